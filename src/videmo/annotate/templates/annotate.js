// videmo annotate: plays the corpus's clips and POSTs every button press to the server at once.
"use strict";
(() => {
  const page = JSON.parse(document.getElementById("page-data").textContent);
  const clips = page.clips;
  const $ = (id) => document.getElementById(id);
  const video = $("video"), observerInput = $("observer"), count = $("count"), message = $("message");
  const byKey = new Map();
  for (const el of document.querySelectorAll("button.event")) {
    if (el.dataset.key) byKey.set(el.dataset.key.toLowerCase(), el);
    el.addEventListener("click", () => press(el));
  }
  const hashIndex = () => {
    const m = /^#clip=(\d+)$/.exec(location.hash);
    return m && Number(m[1]) < clips.length ? Number(m[1]) : 0;
  };
  let index = hashIndex();
  const stored = window.localStorage.getItem("videmo-observer");
  if (!observerInput.value && stored) observerInput.value = stored;

  const observer = () => observerInput.value.trim();
  const say = (text) => { message.textContent = text; };

  function showCounts(c) {
    const clip = clips[index].id;
    const here = (c.clips && c.clips[clip]) || 0;
    count.dataset.clip = String(here);
    count.dataset.observer = String(c.observer_total);
    count.dataset.total = String(c.total);
    count.textContent = observer()
      ? `${here} on this clip by ${observer()} · ${c.observer_total} by ${observer()} · ${c.total} in annotations.csv`
      : `${c.total} in annotations.csv`;
  }

  async function refreshCounts() {
    try {
      const r = await fetch(`/api/events?observer=${encodeURIComponent(observer())}`);
      if (r.ok) showCounts(await r.json());
    } catch (e) { say(`cannot reach the server: ${e}`); }
  }

  // a segment of a long recording (corpus.segments): play from its start, pause at its end;
  // media_ms stays the recording's time, so events merge with its frames as any clip's do
  const segment = () => (clips[index].segment === undefined ? null : clips[index]);
  function seekStart() {
    const s = segment();
    if (s && (video.currentTime < s.start || video.currentTime >= s.end)) video.currentTime = s.start;
  }
  video.addEventListener("loadedmetadata", seekStart);
  video.addEventListener("play", seekStart);
  video.addEventListener("timeupdate", () => {
    const s = segment();
    if (!s || video.currentTime < s.end) return;
    video.pause();
    if ($("autoadvance").checked && index < clips.length - 1) load(index + 1, true);
  });

  function load(i, play) {
    index = Math.max(0, Math.min(clips.length - 1, i));
    const s = segment();
    if (video.getAttribute("src") !== clips[index].src) video.src = clips[index].src;
    else seekStart();
    $("clip-id").textContent = s
      ? `${s.segment} (${clips[index].id}, ${s.start.toFixed(3)}–${s.end.toFixed(3)} s)`
      : clips[index].id;
    $("position").textContent = `clip ${index + 1} / ${clips.length}`;
    $("prev").disabled = index === 0;
    $("next").disabled = index === clips.length - 1;
    history.replaceState(null, "", `#clip=${index}`);
    refreshCounts();
    if (play) video.play().catch(() => {});
  }

  async function press(el) {
    if (!observer()) { say("Enter your name first (Observer)."); observerInput.focus(); return; }
    const event = { observer: observer(), clip_id: clips[index].id, button: el.dataset.button,
                    media_ms: Math.round(video.currentTime * 1000), wall_ms: Date.now() };
    try {
      const r = await fetch("/api/events", { method: "POST", keepalive: true,
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(event) });
      const answer = await r.json();
      if (!r.ok) { say(`not saved: ${answer.error}`); return; }
      say("");
      showCounts(answer);
      el.classList.add("saved");
      setTimeout(() => el.classList.remove("saved"), 250);
    } catch (e) { say(`not saved (server unreachable): ${e}`); }
  }

  const toggle = () => (video.paused ? video.play().catch(() => {}) : video.pause());
  $("prev").addEventListener("click", () => load(index - 1, true));
  $("next").addEventListener("click", () => load(index + 1, true));
  $("play").addEventListener("click", toggle);
  video.addEventListener("ended", () => {
    if ($("autoadvance").checked && index < clips.length - 1) load(index + 1, true);
  });
  video.addEventListener("error", () => say(`cannot play ${clips[index].id}`));
  observerInput.addEventListener("change", () => {
    window.localStorage.setItem("videmo-observer", observer());
    refreshCounts();
  });
  document.addEventListener("keydown", (e) => {
    if (e.target === observerInput || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "ArrowRight") { load(index + 1, true); e.preventDefault(); return; }
    if (e.key === "ArrowLeft") { load(index - 1, true); e.preventDefault(); return; }
    if (e.key === " ") { toggle(); e.preventDefault(); return; }
    const el = byKey.get(e.key.toLowerCase());
    if (el) { press(el); e.preventDefault(); }
  });
  window.addEventListener("hashchange", () => load(hashIndex(), false));
  load(index, false);
})();
