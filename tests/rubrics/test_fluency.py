import pytest

from rubrics import fluency
from rubrics.fluency import _model, analyse, features, logprobs
from rubrics.records import Conversation, Turn


def value(text: str) -> float:
    return fluency(Conversation.from_text(text)).value


NATURAL = [
    "昨日のコンペ、最後の最後でPrivateの順位が上がって本当にほっとしました。",
    "LightGBMでベースラインを作って、EDAの結果を見ながら特徴量を足していった。",
    "CVは0.8732、Public LBは0.8691で、相関はそこそこ取れている。",
    "3月15日の午後2時から、オンラインで説明会を開きます。",
    "田中さんと佐藤さんがチームを組んで、名古屋のハッカソンに出場した。",
    "そんなに順位にこだわらなくても、楽しめればそれでいいんじゃない？",
]

# (kind, corrupted text) pairs, each of which must score below every natural text above.
CORRUPTED = [
    ("shuffled words", "思うはだけで十分に役立つと月刊Kaggle私ですの"),
    ("shuffled characters", "習機学械のは強勉しいで楽すねこれ"),
    ("repetition loop", "Kaggleは楽しいです。Kaggleは楽しいです。Kaggleは楽しいです。Kaggleは楽しいです。"),
    ("repetition loop", "そうですねそうですねそうですねそうですねそうですね"),
    ("random kana", "ぬにめらそほけゆきつるれへぬもさ"),
    ("random katakana", "ヌヘモラソケツユリテヰネホ"),
    ("mixed-script garbage", "あ3Kj漢字ヲぬx@2ア語zq%"),
]


@pytest.mark.parametrize("text", NATURAL)
def test_natural_text_with_jargon_numbers_and_names_reads_as_fluent(text):
    assert value(text) > 0.5


@pytest.mark.parametrize(("kind", "text"), CORRUPTED)
def test_corrupted_text_scores_below_all_natural_text(kind, text):
    assert value(text) < min(value(t) for t in NATURAL), kind


def test_cut_mid_clause_scores_below_the_whole_sentence():
    whole = "新しいモデルを試してみたところ、精度が思ったより上がりました。"
    assert value("新しいモデルを試してみたところ、精度が") < value(whole)


def test_tweet_artefacts_do_not_cost_fluency():
    assert value("KaggleでLBが上がった #kaggle https://t.co/x") == pytest.approx(value("KaggleでLBが上がった"))


def test_conversation_value_is_the_mean_and_names_the_worst_turn():
    conv = Conversation((Turn("A", NATURAL[0]), Turn("B", "ぬにめらそほけゆきつるれへ")))
    score = fluency(conv)
    assert score.evidence["worst_turn"] == 1
    assert score.value == pytest.approx(sum(score.evidence["turns"]) / 2, abs=1e-3)


def test_empty_turns_score_zero():
    assert value("") == 0.0
    assert fluency(Conversation(())).value == 0.0


def test_a_turn_scores_the_same_whatever_turns_surround_it():
    # All turns of a conversation are scored in one pass; no turn may leak into its neighbour's score.
    turns = ["", "う", NATURAL[2], "#kaggle https://t.co/x", CORRUPTED[4][1], "絵文字😇と\u3000全角空白", NATURAL[0]]
    score = fluency(Conversation(tuple(Turn("AB"[i % 2], t) for i, t in enumerate(turns))))
    assert score.evidence["turns"] == [round(value(t), 4) for t in turns]


def reference_features(text: str) -> list[float]:
    """The features as defined text by text in plain Python, which the batch path computes for all texts at once."""
    model = _model()
    (morph, unseen, chars), a = logprobs([text], model)[0], analyse(text)
    n, chars, s = max(len(a.keys), 1), chars or [model.prior[1]], a.surfaces
    flags = [model.codes[k][1] for k in a.keys]
    return [
        (sum(morph) - morph[-1] + 3 * model.prior[0]) / (len(morph) - 1 + 3),
        unseen / len(morph),
        morph[-1],
        (sum(chars) + 3 * model.prior[1]) / (len(chars) + 3),
        chars.count(model.char_miss) / len(chars),
        1.0 - len(set(zip(s, s[1:], s[2:], strict=False))) / (len(s) - 2) if len(s) > 4 else 0.0,
        1.0 - len(set(s)) / n,
        flags.count("u") / n,
        flags.count("a") / n,
    ]


def test_batch_features_equal_the_per_text_definition_to_the_bit():
    texts = [*NATURAL, *(t for _, t in CORRUPTED), "う", "。", "ＡＢＣ１２３と😇", "草" * 300, "まぁ\u3000いいか"]
    assert features(texts) == [reference_features(t) for t in texts]
