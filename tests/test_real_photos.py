"""The real-photo split: people, the exclusion rule, the labels and a split by person."""

from __future__ import annotations

import pytest

from videmo.train import real_photos as rp


@pytest.mark.parametrize("image, person", [
    ("Colin_Powell_0012.jpg", "Colin_Powell"),
    ("HrithikRoshan_12.jpg", "HrithikRoshan"),
    ("Roh_Moo-hyun_0003.jpg", "Roh_Moo-hyun"),
    ("facial-expressions_2868588k.jpg", "facial-expressions"),
])
def test_person_of(image, person):
    assert rp.person_of(image) == person


@pytest.mark.parametrize("person, excluded", [
    ("Al_Gore", True),
    ("al_gore", True),
    ("AlGore", True),                       # the same letters, another spacing
    ("Vicente_Fox_de_la_Concha", True),     # a longer form of a listed name
    ("Abdullah", True),                     # a shorter form of a listed name
    ("Al_Gorel", False),
    ("Wang_Yingfan", False),                # Wang_Yi is listed: a word is not a prefix of a word
    ("Gore_Al", False),
])
def test_exclusion_rule(person, excluded):
    names = ["Al_Gore", "Vicente_Fox", "Abdullah_Nasseef", "Wang_Yi"]
    assert rp.is_excluded(person, names) is excluded


def test_class_of_maps_the_eight_labels():
    assert rp.class_of("HAPPINESS") == "positive"
    assert rp.class_of("surprise") == "positive"
    assert rp.class_of("contempt") == "negative"
    assert rp.class_of("Sadness") == "neutral"
    with pytest.raises(ValueError, match="'joy'"):
        rp.class_of("joy")


def test_split_keeps_each_person_in_one_split(tmp_path):
    rows = [{"image": f"P{p}_{i:04d}.jpg", "person": f"P{p}",
             "label": ("positive", "negative", "neutral")[(p + i) % 3]}
            for p in range(60) for i in range(1 + p % 4)]
    splits = rp.split_people(rows, seed=0)
    assert set(splits) == {"train", "selection", "test"}
    where = {}
    for name, ids in splits.items():
        for image in ids:
            assert where.setdefault(rp.person_of(image), name) == name
    assert sorted(sum(splits.values(), [])) == sorted(r["image"] for r in rows)
    assert splits == rp.split_people(rows, seed=0)


def test_committed_split_is_disjoint_by_person():
    people = {n: {rp.person_of(i) for i in rp.read_split(rp.SPLITS / f"{n}.txt")}
              for n in rp.SPLIT_NAMES}
    assert all(people.values())
    assert not people["train"] & people["selection"]
    assert not people["train"] & people["test"]
    assert not people["selection"] & people["test"]


def test_missing_legend_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="legend.csv"):
        rp.load_legend(tmp_path / "legend.csv")
