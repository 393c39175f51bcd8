"""The dependency-free language check and the Instag-style intention count."""

from __future__ import annotations

import pytest

from herd.sft.curation.intentions import count_intentions, is_request
from herd.sft.curation.language import detect_language
from tests.curation.helpers import chat, hh_rows

SAMPLES = {
    "en": "The weather is nice today, and we are going to walk in the park with our dog.",
    "de": "Das Wetter ist heute schön, und wir gehen mit dem Hund in den Park, weil es nicht regnet.",
    "fr": "Le temps est beau aujourd'hui et nous allons nous promener dans le parc avec le chien.",
    "es": "El tiempo está muy bueno hoy y vamos a caminar por el parque con el perro de mi hermana.",
    "it": "Il tempo è bello oggi e andiamo a fare una passeggiata nel parco con il cane di mia sorella.",
    "pt": "O tempo está muito bom hoje e vamos caminhar no parque com o cachorro da minha irmã, você vem?",
    "nl": "Het weer is vandaag mooi en we gaan met de hond in het park wandelen, maar niet te lang.",
    "ru": "Сегодня хорошая погода, и мы пойдём гулять в парк вместе с собакой моей сестры.",
    "uk": "Сьогодні гарна погода, і ми підемо гуляти в парк разом із собакою моєї сестри.",
    "el": "Ο καιρός είναι ωραίος σήμερα και θα πάμε βόλτα στο πάρκο με τον σκύλο.",
    "ar": "الطقس جميل اليوم وسنذهب للتنزه في الحديقة مع الكلب الخاص بأختي الصغيرة.",
    "zh": "今天天气很好，我们要和我姐姐的狗一起去公园散步，然后回家吃晚饭。",
    "ja": "今日は天気がいいので、姉の犬と一緒に公園を散歩してから家に帰ります。",
    "ko": "오늘은 날씨가 좋아서 언니의 강아지와 함께 공원에서 산책을 할 거예요.",
}


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_detects_each_supported_language(lang):
    assert detect_language(SAMPLES[lang]) == lang


def test_undecidable_cases_are_und():
    assert detect_language("Ok.") == "und"  # too few letters
    assert detect_language("1234 5678 !!!! ....") == "und"
    # A Latin-script language outside the stop-word lists (Finnish) is not forced into one.
    assert detect_language("Hyvää huomenta, kissani nukkuu sohvalla koko päivän pitkään.") == "und"


def test_real_hh_rlhf_replies_read_as_english():
    rows = hh_rows(60)
    replies = [" ".join(m["content"] for m in r["messages"] if m["role"] == "assistant") for r in rows]
    detected = [detect_language(t) for t in replies]
    assert all(d in ("en", "und") for d in detected), detected
    assert detected.count("en") >= 50


def test_request_clauses():
    assert is_request("What is the capital of France?")
    assert is_request("Please write a haiku about rain")
    assert is_request("Could you please summarize this article")
    assert is_request("I want you to translate it into German")
    assert not is_request("My cat is sleeping on the sofa.")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hi there", 1),  # every user turn asks for something
        ("What is 2+2?", 1),
        ("Explain recursion and give an example. Also, list three languages that support it.", 3),
        ("Write a poem about cats.\n1. Make it rhyme\n2. Translate it into French", 3),
        ("What is X? What is X?", 1),  # the same request twice counts once
        ("Summarize this: ```code with ? marks? and write things```", 1),
    ],
)
def test_intention_count_single_turn(text, expected):
    assert count_intentions(chat(text, "ok")) == expected


def test_intentions_add_up_over_user_turns():
    row = {"messages": [
        {"role": "user", "content": "What is a list? Show me an example."},
        {"role": "assistant", "content": "A list is ..."},
        {"role": "user", "content": "Now sort it and explain the complexity."},
        {"role": "assistant", "content": "..."},
    ]}
    assert count_intentions(row) == 4
