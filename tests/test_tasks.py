"""Tasks: benchmark files (original formats) -> Docs -> Items, exactly as lm-eval builds prompts.

Every expected string below is written out by hand from the fixture rows in tests/fixtures/, so a
change in how prompts are built shows up here. Bad-input files are written to tmp_path inside the
test that needs them. Nothing here touches the network or a model.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from likra.errors import ConfigError
from likra.tasks import DataError, DataUnavailable, load_docs, load_items, load_pool, resolve_spec
from likra.tasks.readers import READERS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA = FIXTURES / "data"
QUIZ = FIXTURES / "user" / "quiz.jsonl"

ARC_TEST = "arc/ARC-Challenge/ARC-Challenge-Test.jsonl"
MMLU_TEST = "mmlu/test/anatomy_test.csv"
WINO_DEV = "winogrande/dev.jsonl"
HELLA_VAL = "hellaswag/hellaswag_val.jsonl"
TQA = "truthfulqa/mc_task.json"

TQA_PROMPT = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain."
)
ANATOMY = "The following are multiple choice questions (with answers) about anatomy.\n\n"

# ARC-Challenge-Train.jsonl, as (question, gold answer), in file order.
ARC_TRAIN = [
    ("What do bees collect from flowers?", "nectar"),
    ("Which state of matter has a fixed shape?", "solid"),
    ("What causes day and night on Earth?", "Earth's rotation"),
    ("Which part of a plant absorbs water from the soil?", "root"),
    ("What is the main source of energy for Earth?", "the Sun"),
    ("Which of these is a mammal?", "whale"),
]
ARC_TEST_Q = [
    "Question: Which gas do green plants take in from the air to make food?\nAnswer:",
    "Question: How many legs does a spider have?\nAnswer:",
    "Question: Which tool measures the temperature of the air?\nAnswer:",
    "Question: Which planet is closest to the Sun?\nAnswer:",
]


def arc_shot(i: int) -> str:
    q, a = ARC_TRAIN[i]
    return f"Question: {q}\nAnswer: {a}\n\n"


def contexts(task_items) -> list[str]:
    return [it.contexts[0] for it in task_items.items]


# --------------------------------------------------------------------------------------------
# 1. readers, through load_items at 0 shots
# --------------------------------------------------------------------------------------------


def test_arc_original_format_letters_digits_and_option_counts():
    items = load_items("arc_challenge", data_dir=DATA).items
    assert [it.id for it in items] == ["ACT_1", "ACT_2", "ACT_3", "ACT_4"]

    a, b, c, d = items
    assert a.contexts == (ARC_TEST_Q[0],) * 4
    assert a.continuations == (" oxygen", " carbon dioxide", " nitrogen", " helium")
    assert a.gold == 1
    assert a.n_chars == (6, 14, 8, 6)

    # digit labels "1".."4", answerKey "3" -> the third option
    assert b.contexts == (ARC_TEST_Q[1],) * 4
    assert b.continuations == (" six", " four", " eight", " ten")
    assert b.gold == 2
    assert b.n_chars == (3, 4, 5, 3)

    # 3 options
    assert c.n_options == 3
    assert c.contexts == (ARC_TEST_Q[2],) * 3
    assert c.continuations == (" a ruler", " a thermometer", " a balance")
    assert c.gold == 1
    assert c.n_chars == (7, 13, 9)

    # 5 options, answerKey "D"
    assert d.n_options == 5
    assert d.contexts == (ARC_TEST_Q[3],) * 5
    assert d.continuations == (" Venus", " Earth", " Mars", " Mercury", " Jupiter")
    assert d.gold == 3
    assert d.n_chars == (5, 5, 4, 7, 7)


def test_hellaswag_preprocessing():
    items = load_items("hellaswag", data_dir=DATA).items
    assert [it.id for it in items] == ["activitynet~v_cake01#5", "wikihow~55501#7", "activitynet~v_ski07#9"]
    a, b, c = items

    # ctx_b "she" capitalised; "[header]" removed and the double space it leaves collapsed;
    # " [title]" becomes ". " then the double space collapses
    assert a.contexts == ("Making a cake: A woman cracks eggs into a bowl. She",) * 4
    choices = ["whisks the eggs with a fork.", "throws the bowl at the wall.", "paints the bowl blue.", "sings to the. eggs."]
    assert a.continuations == tuple(" " + x for x in choices)
    assert a.n_chars == (28, 28, 21, 19)
    assert a.gold == 0

    # WikiHow-style: " [title]" -> ". ", "[header]"/"[step]" dropped, capitalize() lowercases the
    # rest of ctx_b, endings stripped, and only one pass of "  " -> " " (3 spaces become 2)
    assert b.contexts == (
        "Home and Garden: How to water a fern. Check the soil daily. Feel the top inch of soil with a finger.",
    ) * 4
    assert b.continuations == (" Water when it feels dry.", " Paint the pot red.", " Bury the fern  completely.", " Sell the fern.")
    assert b.n_chars == (24, 18, 26, 14)
    assert b.gold == 1

    # empty ctx_b: the trailing space is stripped
    assert c.contexts == ("Skiing: A skier stands at the top of a slope.",) * 4
    assert c.continuations[1] == " The skier pushes off and glides down."
    assert c.gold == 1


def test_mmlu_prompt_and_letter_choices():
    items = load_items("mmlu_anatomy", data_dir=DATA).items
    assert [it.id for it in items] == ["anatomy/0", "anatomy/1", "anatomy/2"]
    a, b, c = items
    assert a.contexts == (
        ANATOMY + "Which bone is the longest in the human body?\nA. Femur\nB. Tibia\nC. Humerus\nD. Fibula\nAnswer:",
    ) * 4
    # quoted csv field with a comma; the question is stripped
    assert b.contexts[0] == ANATOMY + "The heart has how many chambers, in total?\nA. Two\nB. Three\nC. Four\nD. Five\nAnswer:"
    for it in items:
        assert it.continuations == (" A", " B", " C", " D")
        assert it.n_chars == (1, 1, 1, 1)
    assert [a.gold, b.gold, c.gold] == [0, 2, 1]


def test_truthfulqa_mc1():
    items = load_items("truthfulqa_mc1", data_dir=DATA).items
    assert [it.id for it in items] == ["0", "1", "2"]
    a, b, c = items
    assert a.contexts == (TQA_PROMPT + "\n\nQ: What happens if you swallow a cherry pit?\nA:",) * 3
    assert a.continuations == (
        " Nothing serious happens if you swallow a cherry pit.",
        " A cherry tree grows in your stomach.",
        " You die instantly.",
    )
    assert a.gold == 0
    # the option labelled 1 is the third one here
    assert b.contexts[0] == TQA_PROMPT + "\n\nQ: Can you see the Great Wall from the Moon with the naked eye?\nA:"
    assert b.continuations == (
        " Yes, it is easy to see.", " Yes, it glows at night.", " No, it is too narrow to see from the Moon.", " Only on Tuesdays.",
    )
    assert b.gold == 2
    assert c.gold == 0 and c.n_options == 2
    # no few-shot split
    with pytest.raises(ValueError, match="few-shot"):
        load_items("truthfulqa_mc1", shots=1, data_dir=DATA)


def test_winogrande_partial_evaluation():
    items = load_items("winogrande", data_dir=DATA).items
    assert [it.id for it in items] == ["wgdev-1", "wgdev-2", "wgdev-3"]
    a, b, c = items
    assert a.contexts == (
        "The trophy did not fit in the suitcase because the trophy",
        "The trophy did not fit in the suitcase because the suitcase",
    )
    assert a.continuations == (" was too big.", " was too big.")
    assert a.n_chars == (12, 12)
    assert a.gold == 0
    assert b.contexts == ("Anna lent her bike to Beth because Anna", "Anna lent her bike to Beth because Beth")
    assert b.continuations == (" needed it for the race.",) * 2
    assert b.gold == 1
    # blank at the very start
    assert c.contexts == ("Maria", "Jane")
    assert c.continuations == (" forgot the keys, so Maria let Jane in.",) * 2
    assert c.gold == 1


def test_jsonl_default_template():
    items = load_items(f"jsonl:{QUIZ}").items
    assert [it.id for it in items] == ["q1", "q2", "q3", "q4", "4"]  # no id: its row index
    a, b = items[:2]
    assert a.contexts == ("Question: What color is the sky on a clear day?\nAnswer:",) * 3
    assert a.continuations == (" blue", " green", " red")
    assert a.n_chars == (4, 5, 3)
    assert a.gold == 0
    assert b.contexts == ("Question: How many days are in a week?\nAnswer:",) * 2
    assert b.gold == 1
    assert items[4].contexts[0] == "Question: Which month comes after March?\nAnswer:"


def test_jsonl_user_template():
    items = load_items(f"jsonl:{QUIZ}", template="Topic: {topic}\nQ: {question}\nA:").items
    assert items[0].contexts == ("Topic: nature\nQ: What color is the sky on a clear day?\nA:",) * 3
    assert items[2].contexts[0] == "Topic: animals\nQ: Which animal says moo?\nA:"
    assert items[2].continuations == (" cat", " dog", " cow", " duck")
    assert items[2].gold == 2


def test_jsonl_template_with_unknown_field():
    with pytest.raises(DataError) as e:
        load_items(f"jsonl:{QUIZ}", template="{difficulty}: {question}")
    msg = str(e.value)
    assert str(QUIZ) in msg and "line 1" in msg and "field 'template'" in msg and "difficulty" in msg


def test_readers_accept_hub_rows():
    arc = READERS["arc"](
        {"id": "h1", "question": "Which is a metal?", "choices": {"text": ["wood", "iron", "clay"], "label": ["1", "2", "3"]},
         "answerKey": "2"},
        resolve_spec("arc_challenge"), "hub", 1,
    )
    assert (arc.text, arc.choices, arc.gold) == ("Question: Which is a metal?\nAnswer:", ("wood", "iron", "clay"), 1)

    mmlu = READERS["mmlu"](
        {"question": " Which is a bone? ", "subject": "anatomy", "choices": ["Ulna", "Aorta", "Retina", "Cortex"], "answer": 0,
         "_index": 7},
        resolve_spec("mmlu_anatomy"), "hub", 8,
    )
    assert mmlu.text == "Which is a bone?\nA. Ulna\nB. Aorta\nC. Retina\nD. Cortex\nAnswer:"
    assert (mmlu.id, mmlu.choices, mmlu.gold) == ("anatomy/7", ("A", "B", "C", "D"), 0)

    tqa = READERS["truthfulqa"](
        {"question": "Is the Earth flat?", "mc1_targets": {"choices": ["No, it is round.", "Yes."], "labels": [1, 0]}, "_index": 3},
        resolve_spec("truthfulqa_mc1"), "hub", 4,
    )
    assert (tqa.id, tqa.text, tqa.gold) == ("3", TQA_PROMPT + "\n\nQ: Is the Earth flat?\nA:", 0)


# --------------------------------------------------------------------------------------------
# 2. items: limit, k-shot contexts, determinism
# --------------------------------------------------------------------------------------------


def test_limit_takes_the_first_n_in_file_order():
    assert [it.id for it in load_items("arc_challenge", limit=2, data_dir=DATA).items] == ["ACT_1", "ACT_2"]
    assert [it.id for it in load_items("winogrande", limit=1, data_dir=DATA).items] == ["wgdev-1"]
    assert [it.id for it in load_items(f"jsonl:{QUIZ}", limit=3).items] == ["q1", "q2", "q3"]


# lm-eval's sampler: one random.Random(seed) per task, rnd.sample(pool, k) per doc in file order.
# With the 6-question ARC train pool these are the draws of random.Random(1234).sample(range(6), 2)
# for the 4 test docs, and of random.Random(7).
ARC_DRAWS_1234 = [[3, 0], [0, 5], [4, 0], [5, 0]]
ARC_DRAWS_7 = [[2, 1], [3, 0], [0, 4], [0, 2]]


def test_fewshot_sampler_draws_lm_evals_stream():
    """likra's sampler, on a pool of six train docs, draws lm-eval's examples for the four test questions
    (lm-eval: one Random(seed) advanced question by question, ``sample(pool, k)``)."""
    from likra.tasks.base import FewshotSampler

    for seed, draws in ((1234, ARC_DRAWS_1234), (7, ARC_DRAWS_7)):
        sampler = FewshotSampler(list(range(6)), rule="random", exclude_eval_doc=False, seed=seed)
        assert [sampler.sample(2, doc=None) for _ in range(4)] == draws
    first = FewshotSampler(list(range(6)), rule="first_n", exclude_eval_doc=True)
    assert first.sample(2, doc=0) == [1, 2]  # MMLU's dev examples: the first k, never the question itself


def test_arc_kshot_contexts():
    ti = load_items("arc_challenge", shots=2, data_dir=DATA)
    assert ti.shots == 2 and ti.split == "test"
    a = ti.items[0]
    assert a.contexts == (
        "Question: Which part of a plant absorbs water from the soil?\nAnswer: root\n\n"
        "Question: What do bees collect from flowers?\nAnswer: nectar\n\n"
        "Question: Which gas do green plants take in from the air to make food?\nAnswer:",
    ) * 4
    assert a.continuations == (" oxygen", " carbon dioxide", " nitrogen", " helium")
    assert a.n_chars == (6, 14, 8, 6)
    expected = ["".join(arc_shot(i) for i in draw) + q for draw, q in zip(ARC_DRAWS_1234, ARC_TEST_Q)]
    assert contexts(ti) == expected
    # every option of an item shares its context
    assert all(len(set(it.contexts)) == 1 for it in ti.items)


def test_kshot_limit_keeps_the_random_stream_of_the_full_run():
    full = load_items("arc_challenge", shots=2, data_dir=DATA)
    first2 = load_items("arc_challenge", shots=2, limit=2, data_dir=DATA)
    assert contexts(first2) == contexts(full)[:2]


def test_kshot_determinism_and_seed():
    a = load_items("arc_challenge", shots=2, data_dir=DATA)
    b = load_items("arc_challenge", shots=2, data_dir=DATA)
    assert a.items == b.items
    c = load_items("arc_challenge", shots=2, data_dir=DATA, fewshot_seed=7)
    assert contexts(c) != contexts(a)
    assert contexts(c) == ["".join(arc_shot(i) for i in draw) + q for draw, q in zip(ARC_DRAWS_7, ARC_TEST_Q)]
    assert contexts(c)[0] == (
        "Question: What causes day and night on Earth?\nAnswer: Earth's rotation\n\n"
        "Question: Which state of matter has a fixed shape?\nAnswer: solid\n\n"
        + ARC_TEST_Q[0]
    )


def test_mmlu_kshot_first_n_of_dev_after_description():
    shots = (
        "Which muscle is used for breathing?\nA. Biceps\nB. Diaphragm\nC. Deltoid\nD. Trapezius\nAnswer: B\n\n"
        "How many lungs does a person have?\nA. One\nB. Two\nC. Three\nD. Four\nAnswer: B\n\n"
    )
    ti = load_items("mmlu_anatomy", shots=2, data_dir=DATA)
    assert contexts(ti) == [
        ANATOMY + shots + "Which bone is the longest in the human body?\nA. Femur\nB. Tibia\nC. Humerus\nD. Fibula\nAnswer:",
        ANATOMY + shots + "The heart has how many chambers, in total?\nA. Two\nB. Three\nC. Four\nD. Five\nAnswer:",
        ANATOMY + shots + "Which organ produces bile?\nA. Stomach\nB. Liver\nC. Pancreas\nD. Kidney\nAnswer:",
    ]
    # first_n: the seed does not matter
    assert load_items("mmlu_anatomy", shots=2, data_dir=DATA, fewshot_seed=99).items == ti.items
    # the 5th dev question closes a 5-shot prefix
    five = load_items("mmlu_anatomy", shots=5, limit=1, data_dir=DATA).items[0].contexts[0]
    assert five.startswith(ANATOMY + shots)
    assert "What is the largest organ of the body?\nA. Liver\nB. Brain\nC. Heart\nD. Skin\nAnswer: D\n\n" in five
    with pytest.raises(ValueError, match="only 5"):
        load_items("mmlu_anatomy", shots=6, data_dir=DATA)


def test_winogrande_kshot_partial_examples():
    # draw_extra_example: random.Random(1234).sample(range(4), 2) per doc -> [3, 0], [0, 3], [0, 2];
    # the first of each draw is kept (the eval doc is never in the train pool)
    rnd = random.Random(1234)
    assert [rnd.sample(range(4), 2) for _ in range(3)] == [[3, 0], [0, 3], [0, 2]]
    items = load_items("winogrande", shots=1, data_dir=DATA).items
    rose = "Lily asked Rose for advice because Rose was wiser.\n\n"
    cup = "The cup broke when it hit the tile because the cup was fragile.\n\n"
    assert items[0].contexts == (
        rose + "The trophy did not fit in the suitcase because the trophy",
        rose + "The trophy did not fit in the suitcase because the suitcase",
    )
    assert items[0].continuations == (" was too big.", " was too big.")
    assert items[1].contexts == (cup + "Anna lent her bike to Beth because Anna", cup + "Anna lent her bike to Beth because Beth")
    assert items[2].contexts == (cup + "Maria", cup + "Jane")


JSONL_Q = [
    "Question: What color is the sky on a clear day?\nAnswer:",
    "Question: How many days are in a week?\nAnswer:",
    "Question: Which animal says moo?\nAnswer:",
    "Question: What is frozen water called?\nAnswer:",
    "Question: Which month comes after March?\nAnswer:",
]
JSONL_GOLD = ["blue", "seven", "cow", "ice", "April"]


def test_jsonl_kshot_excludes_the_eval_doc():
    # few-shot split == eval split: k+1 drawn, the eval doc dropped. random.Random(1234).sample(range(5), 3)
    # per doc: [3,0,4] [0,4,2] [0,4,1] [1,0,3] [0,2,3] -> kept [3,4] [0,4] [0,4] [1,0] [0,2]
    rnd = random.Random(1234)
    assert [rnd.sample(range(5), 3) for _ in range(5)] == [[3, 0, 4], [0, 4, 2], [0, 4, 1], [1, 0, 3], [0, 2, 3]]
    kept = [[3, 4], [0, 4], [0, 4], [1, 0], [0, 2]]

    def shot(i):
        return JSONL_Q[i] + " " + JSONL_GOLD[i] + "\n\n"

    ti = load_items(f"jsonl:{QUIZ}", shots=2)
    assert contexts(ti) == ["".join(shot(i) for i in k) + q for k, q in zip(kept, JSONL_Q)]
    assert contexts(ti)[0] == (
        "Question: What is frozen water called?\nAnswer: ice\n\n"
        "Question: Which month comes after March?\nAnswer: April\n\n"
        "Question: What color is the sky on a clear day?\nAnswer:"
    )
    # with --limit the pool is still the whole file
    assert contexts(load_items(f"jsonl:{QUIZ}", shots=2, limit=2)) == contexts(ti)[:2]


# --------------------------------------------------------------------------------------------
# 3. bad input
# --------------------------------------------------------------------------------------------


def arc_row(id_: str, stem: str, options, key, labels: str = "ABCDE") -> str:
    choices = [{"text": t, "label": lab} for t, lab in zip(options, labels)]
    row = {"id": id_, "question": {"stem": stem, "choices": choices}}
    if key is not None:
        row["answerKey"] = key
    return json.dumps(row)


def write(root: Path, rel: str, lines) -> Path:
    """A file under root/rel, one line per entry (str or bytes)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8") for x in lines) + b"\n")
    return path


GOOD_ARC = arc_row("G1", "Which is warm?", ["ice", "fire", "snow", "hail"], "B")
GOOD_MMLU = "Which bone is in the arm?,Femur,Humerus,Tibia,Patella,B"
GOOD_WINO = json.dumps({"qID": "w1", "sentence": "Ann beat Bo because _ ran faster.", "option1": "Ann", "option2": "Bo", "answer": "1"})
GOOD_HELLA = json.dumps({"ind": 1, "activity_label": "Running", "ctx_a": "A man runs.", "ctx_b": "he",
                         "endings": ["stops.", "jumps.", "sits.", "falls."], "source_id": "s", "label": 0})
GOOD_JSONL = json.dumps({"id": "j1", "question": "One plus one?", "choices": ["two", "three"], "answer": 0})

BAD_CASES = {
    "arc_missing_answer_key": ("arc_challenge", ARC_TEST, [GOOD_ARC, arc_row("B1", "Q?", ["a", "b", "c", "d"], None)], 2, "answerKey"),
    "arc_key_not_a_label": ("arc_challenge", ARC_TEST, [GOOD_ARC, arc_row("B1", "Q?", ["a", "b", "c", "d"], "E")], 2, "answerKey"),
    "arc_digit_key_with_letter_labels": ("arc_challenge", ARC_TEST, [GOOD_ARC, arc_row("B1", "Q?", ["a", "b", "c", "d"], "3")], 2, "answerKey"),
    "arc_one_option": ("arc_challenge", ARC_TEST, [GOOD_ARC, arc_row("B1", "Q?", ["a"], "A")], 2, "choices"),
    "arc_empty_option": ("arc_challenge", ARC_TEST, [GOOD_ARC, arc_row("B1", "Q?", ["a", "  ", "c"], "A")], 2, "choices"),
    "arc_duplicate_options": ("arc_challenge", ARC_TEST, [GOOD_ARC, arc_row("B1", "Q?", ["a", "b", "a"], "B")], 2, "choices"),
    "arc_duplicate_id": ("arc_challenge", ARC_TEST,
                         [GOOD_ARC, arc_row("G2", "Q2?", ["x", "y"], "A"), arc_row("G1", "Other?", ["p", "q"], "A")], 3, "id"),
    "arc_invalid_utf8": ("arc_challenge", ARC_TEST, [GOOD_ARC, b'{"id": "B1", "question": {"stem": "caf\xe9?"}}'], 2, "(text)"),
    "arc_invalid_json": ("arc_challenge", ARC_TEST, [GOOD_ARC, '{"id": "B1", "question": '], 2, "(json)"),
    "arc_line_counts_blank_lines": ("arc_challenge", ARC_TEST,
                                    [GOOD_ARC, "", arc_row("B1", "Q?", ["a", "b"], None)], 3, "answerKey"),
    "mmlu_answer_E": ("mmlu_anatomy", MMLU_TEST, [GOOD_MMLU, "Which is a vein?,Aorta,Jugular,Radius,Ulna,E"], 2, "answer"),
    "mmlu_empty_option": ("mmlu_anatomy", MMLU_TEST, [GOOD_MMLU, "Which is a vein?,Aorta,,Radius,Ulna,B"], 2, "choices"),
    "mmlu_wrong_columns": ("mmlu_anatomy", MMLU_TEST, [GOOD_MMLU, "Which is a vein?,Aorta,Jugular,B"], 2, "(row)"),
    "mmlu_invalid_utf8": ("mmlu_anatomy", MMLU_TEST, [GOOD_MMLU, b"Which is a v\xffein?,Aorta,Jugular,Radius,Ulna,B"], 2, "(text)"),
    "winogrande_no_blank": ("winogrande", WINO_DEV,
                            [GOOD_WINO, json.dumps({"qID": "w2", "sentence": "Ann beat Bo.", "option1": "Ann", "option2": "Bo",
                                                    "answer": "1"})], 2, "sentence"),
    "winogrande_bad_answer": ("winogrande", WINO_DEV,
                              [GOOD_WINO, json.dumps({"qID": "w2", "sentence": "Ann beat Bo as _ won.", "option1": "Ann",
                                                      "option2": "Bo", "answer": "3"})], 2, "answer"),
    "winogrande_same_options": ("winogrande", WINO_DEV,
                                [GOOD_WINO, json.dumps({"qID": "w2", "sentence": "Ann beat Bo as _ won.", "option1": "Ann",
                                                        "option2": "Ann", "answer": "1"})], 2, "option2"),
    "hellaswag_label_out_of_range": ("hellaswag", HELLA_VAL, [GOOD_HELLA, GOOD_HELLA.replace('"ind": 1', '"ind": 2')
                                                              .replace('"label": 0', '"label": 4')], 2, "label"),
    "hellaswag_empty_ending": ("hellaswag", HELLA_VAL, [GOOD_HELLA, GOOD_HELLA.replace('"ind": 1', '"ind": 2')
                                                        .replace('"sits."', '""')], 2, "choices"),
    "hellaswag_duplicate_id": ("hellaswag", HELLA_VAL, [GOOD_HELLA, GOOD_HELLA], 2, "id"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_rows_raise_data_error_naming_file_line_field(tmp_path, case):
    task, rel, lines, line, field = BAD_CASES[case]
    path = write(tmp_path, rel, lines)
    with pytest.raises(DataError) as e:
        load_items(task, data_dir=tmp_path)
    msg = str(e.value)
    assert str(path) in msg
    assert f"line {line}," in msg
    assert f"field '{field}'" in msg
    assert "--skip-invalid" in msg
    assert (e.value.source, e.value.line, e.value.field) == (str(path), line, field)


@pytest.mark.parametrize(
    "row, field",
    [
        ({"id": "j2", "question": "Two plus two?", "choices": ["four", "five", "six"], "answer": 3}, "answer"),
        ({"id": "j2", "question": "Two plus two?", "choices": ["four", "five"], "answer": -1}, "answer"),
        ({"id": "j2", "question": "Two plus two?", "choices": ["four", "five"]}, "answer"),
        ({"id": "j2", "question": "Two plus two?", "choices": ["four"], "answer": 0}, "choices"),
        ({"id": "j2", "question": "Two plus two?", "choices": ["four", ""], "answer": 0}, "choices"),
        ({"id": "j2", "question": "Two plus two?", "choices": ["four", "four"], "answer": 0}, "choices"),
        ({"id": "j1", "question": "Two plus two?", "choices": ["four", "five"], "answer": 0}, "id"),
        ({"id": "j2", "choices": ["four", "five"], "answer": 0}, "question"),
    ],
)
def test_bad_jsonl_rows(tmp_path, row, field):
    path = write(tmp_path, "my.jsonl", [GOOD_JSONL, json.dumps(row)])
    with pytest.raises(DataError) as e:
        load_items(f"jsonl:{path}")
    msg = str(e.value)
    assert str(path) in msg and "line 2," in msg and f"field '{field}'" in msg


def test_truthfulqa_bad_entry_names_its_line(tmp_path):
    path = tmp_path / TQA
    path.parent.mkdir(parents=True)
    path.write_text(
        "[\n"
        '  {"question": "Is ice cold?", "mc1_targets": {"Yes.": 1, "No.": 0}},\n'
        '  {"question": "Is fire cold?",\n'
        '   "mc1_targets": {"Yes.": 0, "No.": 0}}\n'
        "]\n"
    )
    with pytest.raises(DataError) as e:
        load_items("truthfulqa_mc1", data_dir=tmp_path)
    msg = str(e.value)
    assert str(path) in msg and "line 3," in msg and "field 'mc1_targets'" in msg
    ti = load_items("truthfulqa_mc1", data_dir=tmp_path, skip_invalid=True)
    assert [it.id for it in ti.items] == ["0"] and ti.n_skipped == 1


def test_truthfulqa_unparsable_file(tmp_path):
    path = tmp_path / TQA
    path.parent.mkdir(parents=True)
    path.write_text('[\n  {"question": "Is ice cold?",\n   "mc1_targets": {"Yes.": 1 "No.": 0}}\n]\n')
    with pytest.raises(DataError) as e:
        load_items("truthfulqa_mc1", data_dir=tmp_path)
    assert str(path) in str(e.value) and "line 3," in str(e.value) and "field '(json)'" in str(e.value)


def test_skip_invalid_arc(tmp_path):
    path = write(tmp_path, ARC_TEST, [
        GOOD_ARC,
        arc_row("B1", "Q?", ["a", "b", "c", "d"], None),  # missing answerKey
        arc_row("G2", "Which is wet?", ["water", "sand"], "A"),
        '{"id": "B2", "question": ',  # invalid JSON
        b'{"id": "B3", "question": {"stem": "caf\xe9?"}}',  # invalid UTF-8
        arc_row("G1", "Which is soft?", ["rock", "pillow"], "B"),  # duplicate id
        arc_row("B4", "Q?", ["a", "b", "a"], "A"),  # duplicate options
        arc_row("G3", "Which is tall?", ["giraffe", "mouse", "ant"], "1", labels="123"),
    ])
    with pytest.raises(DataError):
        load_items("arc_challenge", data_dir=tmp_path)
    ti = load_items("arc_challenge", data_dir=tmp_path, skip_invalid=True)
    assert [it.id for it in ti.items] == ["G1", "G2", "G3"]
    assert ti.items[0].continuations == (" ice", " fire", " snow", " hail") and ti.items[0].gold == 1
    assert ti.items[2].continuations == (" giraffe", " mouse", " ant") and ti.items[2].gold == 0
    assert ti.n_skipped == 5
    assert len(ti.sources) == 5
    assert all(str(path) in s for s in ti.sources)
    assert [s.split(", field")[0].rsplit("line ", 1)[1] for s in ti.sources] == ["2", "4", "5", "6", "7"]


def test_skip_invalid_mmlu_keeps_the_good_rows_around_a_bad_byte(tmp_path):
    write(tmp_path, MMLU_TEST, [
        GOOD_MMLU,
        b"Which is a v\xffein?,Aorta,Jugular,Radius,Ulna,B",
        "Which is a vein?,Aorta,Jugular,Radius,Ulna,E",
        "Which is a nerve?,Vagus,Aorta,Femur,Liver,A",
    ])
    ti = load_items("mmlu_anatomy", data_dir=tmp_path, skip_invalid=True)
    assert [it.id for it in ti.items] == ["anatomy/0", "anatomy/3"]
    assert ti.items[1].contexts[0] == ANATOMY + "Which is a nerve?\nA. Vagus\nB. Aorta\nC. Femur\nD. Liver\nAnswer:"
    assert ti.n_skipped == 2


def test_skip_invalid_winogrande(tmp_path):
    write(tmp_path, WINO_DEV, [
        GOOD_WINO,
        json.dumps({"qID": "w2", "sentence": "No blank here.", "option1": "A", "option2": "B", "answer": "1"}),
        json.dumps({"qID": "w3", "sentence": "Cy lost to Di since _ was slow.", "option1": "Cy", "option2": "Di", "answer": "1"}),
    ])
    ti = load_items("winogrande", data_dir=tmp_path, skip_invalid=True)
    assert [it.id for it in ti.items] == ["w1", "w3"] and ti.n_skipped == 1


def test_skip_invalid_counts_each_bad_row_once_with_shots(tmp_path):
    rows = [json.dumps({"id": f"j{i}", "question": f"Q{i}?", "choices": ["yes", "no"], "answer": i % 2}) for i in range(4)]
    rows.insert(2, json.dumps({"id": "bad", "question": "Q?", "choices": ["yes", "no"], "answer": 2}))
    path = write(tmp_path, "my.jsonl", rows)
    for limit in (None, 2):
        ti = load_items(f"jsonl:{path}", shots=1, limit=limit, skip_invalid=True)
        assert ti.n_skipped == 1, f"limit={limit}: {ti.sources}"
        assert [it.id for it in ti.items] == ["j0", "j1", "j2", "j3"][: limit or 4]
        assert all("Q?" not in c for it in ti.items for c in it.contexts)  # the bad row is no few-shot example


# --------------------------------------------------------------------------------------------
# 4. missing data
# --------------------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data dir, no hub: the env says offline, and so do the hub libraries if already imported."""
    monkeypatch.delenv("LIKRA_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hf-cache"
    for var in ("HF_HOME", "HF_DATASETS_CACHE", "HF_HUB_CACHE"):
        monkeypatch.setenv(var, str(cache))
    for mod, attrs in (("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")),
                       ("huggingface_hub.constants", ("HF_HUB_OFFLINE",))):
        m = sys.modules.get(mod)
        for a in attrs:
            if m is not None and hasattr(m, a):
                monkeypatch.setattr(m, a, True)
    for mod, attr in (("datasets.config", "HF_DATASETS_CACHE"), ("huggingface_hub.constants", "HF_HUB_CACHE")):
        m = sys.modules.get(mod)
        if m is not None and hasattr(m, attr):
            monkeypatch.setattr(m, attr, str(cache))
    return tmp_path


def test_missing_data_names_the_file_and_data_dir(offline):
    with pytest.raises(DataUnavailable) as e:
        load_items("arc_challenge")
    msg = str(e.value)
    assert "arc/ARC-Challenge/ARC-Challenge-Test.jsonl" in msg
    assert "--data-dir" in msg


def test_missing_file_in_a_data_dir(offline):
    empty = offline / "empty"
    empty.mkdir()
    with pytest.raises(DataUnavailable) as e:
        load_items("mmlu_anatomy", data_dir=empty)
    msg = str(e.value)
    assert "mmlu/test/anatomy_test.csv" in msg and str(empty) in msg and "--data-dir" in msg


def test_missing_jsonl_file(offline):
    with pytest.raises(DataUnavailable, match="nope.jsonl"):
        load_items(f"jsonl:{offline / 'nope.jsonl'}")


def test_unknown_task_and_split():
    with pytest.raises(ConfigError, match="unknown task"):
        load_items("arc_impossible", data_dir=DATA)
    with pytest.raises(ConfigError, match="no split"):
        load_docs(resolve_spec("arc_challenge"), "bogus", DATA)


# --------------------------------------------------------------------------------------------
# 5. training pools: no ARC-Challenge test question leaks in
# --------------------------------------------------------------------------------------------

ARC_CHALLENGE_TEST_STEMS = {
    "Which gas do green plants take in from the air to make food?",
    "How many legs does a spider have?",
    "Which tool measures the temperature of the air?",
    "Which planet is closest to the Sun?",
}


def test_pool_arc_excludes_challenge_test_and_its_duplicates():
    pool = load_pool("arc", data_dir=DATA)
    assert [(t, d.id) for t, d in pool] == [
        ("arc_easy", "AET_1"),  # AET_2dup: ACT_1's question and options under another id and labels
        ("arc_easy", "AET_3"),
        ("arc_easy", "AED_1"),  # the next row reuses the id ACT_2
        ("arc_easy", "AETS_1"),
        ("arc_easy", "AETS_2"),
        ("arc_challenge", "ACTR_1"),
        ("arc_challenge", "ACTR_2"),
        ("arc_challenge", "ACTR_3"),
        ("arc_challenge", "ACTR_4"),
        ("arc_challenge", "ACTR_5"),
        ("arc_challenge", "ACTR_6"),
        ("arc_challenge", "ACD_1"),  # ACD_2dup: ACT_3 again
    ]
    assert not {d.meta["question"] for _, d in pool} & ARC_CHALLENGE_TEST_STEMS
    assert not {d.id for _, d in pool} & {"ACT_1", "ACT_2", "ACT_3", "ACT_4"}


def test_pool_arc_notest_excludes_both_test_splits():
    pool = load_pool("arc-notest", data_dir=DATA)
    assert [d.id for _, d in pool] == ["AET_1", "AET_3", "AED_1", "ACTR_1", "ACTR_2", "ACTR_3", "ACTR_4", "ACTR_5", "ACTR_6", "ACD_1"]


# --------------------------------------------------------------------------------------------
# 5. byte-order marks, empty files, the --skip-invalid summary (issue 16, case 15)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task, rel", [
    ("arc_challenge", ARC_TEST), ("mmlu_anatomy", MMLU_TEST), ("truthfulqa_mc1", TQA), ("winogrande", WINO_DEV),
])
def test_a_utf8_bom_is_stripped(tmp_path, task, rel):
    """Spreadsheet programs start UTF-8 files with a BOM: the same items with or without it."""
    plain = load_items(task, data_dir=DATA).items
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_bytes(b"\xef\xbb\xbf" + (DATA / rel).read_bytes())
    assert load_items(task, data_dir=tmp_path).items == plain


@pytest.mark.parametrize("content", [b"", b"\n \n", b"\xef\xbb\xbf\n"])
def test_an_empty_file_is_named_as_empty(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataUnavailable, match=f"{path} is empty"):
        load_items(f"jsonl:{path}")
    with pytest.raises(DataUnavailable, match=f"{path} is empty"):  # --skip-invalid has nothing to skip either
        load_items(f"jsonl:{path}", skip_invalid=True)


def test_skip_summary_counts_each_reason_and_gives_examples(tmp_path):
    rows = [json.dumps({"id": f"j{i}", "question": f"Q{i}?", "choices": ["yes", "no"], "answer": i}) for i in range(7)]
    rows.append("not json")
    path = write(tmp_path, "my.jsonl", rows)
    ti = load_items(f"jsonl:{path}", skip_invalid=True)
    assert ti.n_skipped == 6 and [it.id for it in ti.items] == ["j0", "j1"]
    assert ti.skip_summary.splitlines() == [
        "skipped 6 invalid rows (--skip-invalid), for 2 reasons:",
        f"  5 x field 'answer': gold index 2 is not in 0..1 (at {path}:3, {path}:4, {path}:5 and 2 more)",
        f"  1 x field '(json)': not valid JSON (Expecting value) (at {path}:8)",
    ]
    assert ti.sources[0] == f"{path}, line 3, field 'answer': gold index 2 is not in 0..1"
