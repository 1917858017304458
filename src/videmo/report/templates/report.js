// Sorting of every table.sortable (click a heading; again to reverse) and the clip table's
// filter (text in any cell, and a data-* attribute chosen in #clip-show). No library, no network.
(function () {
  "use strict";

  function key(row, i) {
    var cell = row.cells[i];
    if (!cell) return "";
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === "") return 1; // empty values (n/a) last
    if (b === "") return -1;
    var x = Number(a), y = Number(b);
    if (!isNaN(x) && !isNaN(y)) return x - y;
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }

  function sortTable(table, index, th) {
    var descending = th.getAttribute("aria-sort") === "ascending";
    var heads = table.tHead.rows[0].cells;
    for (var h = 0; h < heads.length; h++) heads[h].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = key(r1, index), b = key(r2, index);
      if (a === "" || b === "") return compare(a, b); // n/a last in both directions
      return descending ? compare(b, a) : compare(a, b);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = th.querySelector("button.sort");
      if (button) button.addEventListener("click", function () { sortTable(table, index, th); });
    });
  });

  var table = document.getElementById("clips");
  var input = document.getElementById("clip-filter");
  var show = document.getElementById("clip-show");
  var counter = document.getElementById("clip-count");
  if (!table || !input || !show || !counter) return;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);

  function filter() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var parts = show.value ? show.value.split(":") : null;
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var ok = terms.every(function (t) { return text.indexOf(t) !== -1; });
      if (ok && parts) ok = row.getAttribute("data-" + parts[0]) === parts[1];
      row.hidden = !ok;
      if (ok) shown++;
    });
    counter.textContent = shown + " of " + rows.length + " clips";
    counter.setAttribute("data-shown", String(shown));
  }

  input.addEventListener("input", filter);
  show.addEventListener("change", filter);
  filter();
})();
