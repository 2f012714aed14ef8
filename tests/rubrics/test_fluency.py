import re

import pytest

from rubrics import fluency
from rubrics.fluency import KIND, _loop_chars, _model, analyse, echoes, end_odds, ending, features
from rubrics.records import Conversation, Turn


def value(text: str) -> float:
    return fluency(Conversation.from_text(text)).value


def debate(*texts: str) -> Conversation:
    return Conversation(tuple(Turn("AB"[i % 2], t) for i, t in enumerate(texts)))


NATURAL = [
    "昨日のコンペ、最後の最後でPrivateの順位が上がって本当にほっとしました。",
    "LightGBMでベースラインを作って、EDAの結果を見ながら特徴量を足していった。",
    "CVは0.8732、Public LBは0.8691で、相関はそこそこ取れている。",
    "3月15日の午後2時から、オンラインで説明会を開きます。",
    "田中さんと佐藤さんがチームを組んで、名古屋のハッカソンに出場した。",
    "そんなに順位にこだわらなくても、楽しめればそれでいいんじゃない？",
    # formal, news and report registers: the old model, fitted on our own chat, read these as disfluent
    "政府は十三日の閣議で、地方の交通網を維持するための補助金を拡充する方針を決定した。",
    "同社の四半期決算は、半導体需要の回復を背景に前年同期比で二割の増益となった。",
    "前半は相手の堅い守備に苦しんだが、後半十二分に途中出場の選手が先制点を挙げた。",
    "江戸時代中期に建てられたこの寺院は、昭和初期の改修を経て現在の姿となっている。",
    "なお、詳細については来月開催予定の説明会にて改めてご案内いたします。",
    "うん、そうしよう",
]

# (kind, corrupted text) pairs, each of which must score below every natural text above.
CORRUPTED = [
    ("shuffled words", "思うはだけで十分に役立つと月刊Kaggle私ですの"),
    ("shuffled characters", "習機学械のは強勉しいで楽すねこれ"),
    ("repetition loop", "Kaggleは楽しいです。Kaggleは楽しいです。Kaggleは楽しいです。Kaggleは楽しいです。"),
    ("repetition loop", "そうですねそうですねそうですねそうですねそうですね"),
    ("random kana", "ぬにめらそほけゆきつるれへぬもさ"),
    ("mixed-script garbage", "あ3Kj漢字ヲぬx@2ア語zq%"),
    ("Latin loop", "詳しい手順は公式のドキュメントに詳しく書かれていますGGLGGLGGLGGL"),
    ("Latin loop", "CVとLBの相関がないのでsubmitsubmitsubmitsubmitsubmit"),
    ("number loop", "今回はCV LB 0.0002 0.8812 0.8812 0.8812 0.8812 0."),
    ("word salad", "最初の料理は、最初の番一番一番一番一番だよ。"),
    ("particle soup", "モデルのがをにはで精度をにのがを上げ"),
    ("cut mid-clause", "新しい特徴量を追加してみたところ、CVのスコアが"),
]


@pytest.mark.parametrize("text", NATURAL)
def test_natural_text_of_every_register_reads_as_fluent(text):
    assert value(text) > 0.5


@pytest.mark.parametrize(("kind", "text"), CORRUPTED)
def test_degenerate_text_scores_below_half_and_below_all_natural_text(kind, text):
    assert value(text) < 0.5, kind
    assert value(text) < min(value(t) for t in NATURAL), kind


def test_a_turn_cut_mid_word_after_a_latin_term_scores_below_the_whole_sentence():
    assert value("DeNAで開催された、Kaggle To") < 0.5 < value("DeNAで開催された、Kaggle Tokyo Meetupに参加しました。")


def test_cut_mid_clause_scores_below_the_whole_sentence():
    whole = "新しいモデルを試してみたところ、精度が思ったより上がりました。"
    assert value("新しいモデルを試してみたところ、精度が") < 0.5 < value(whole)


@pytest.mark.parametrize(
    "text", ["1,000円カットを利用しています。", "ｗｗｗｗ", "すごい！！！", "GALAXY SIIIを予約した。", "ドキドキした。"]
)
def test_numbers_laughter_and_emphasis_are_not_loops(text):
    assert _loop_chars(text) == 0


def test_tweet_artefacts_do_not_cost_fluency():
    assert value("KaggleでLBが上がった #kaggle https://t.co/x") == pytest.approx(value("KaggleでLBが上がった"))


def test_turns_that_repeat_earlier_turns_pull_the_conversation_down():
    looping = fluency(debate(*["それはそれでもいい"] * 4))
    assert looping.value < 0.5
    assert looping.evidence["echoes"] == [1, 2, 3]
    replies = debate("Kaggleのメダルは転職に効くと思う？", "正直、効くのは面接で話せる中身のほうだと思う。")
    assert fluency(replies).evidence["echoes"] == []


def test_a_turn_that_mostly_rewords_an_earlier_one_is_a_partial_repeat():
    # The drifting model's variations on one filler: not said word for word, still no new turn.
    turns = ["それはそれでもないと思う", "それはそれでもないですよね", "それはそれでもないと思う。それはそれでもない"]
    said = echoes(turns)
    assert said[0] == 0.0 and 0.2 < said[1] < 1.0 and said[2] == 1.0


def test_a_debater_may_quote_a_phrase_of_the_other():
    first = "CVを信じるべきか、LBを信じるべきか、毎回迷うんだよね。"
    second = "CVを信じるべきだよ。LBはテストデータの一部でしか測っていないから。"
    assert echoes([first, second]) == [0.0, 0.0]


def test_conversation_value_is_held_down_by_its_worst_turn_and_names_it():
    conv = debate(NATURAL[0], NATURAL[6], NATURAL[5], "ぬにめらそほけゆきつるれへ")
    score = fluency(conv)
    turns = score.evidence["turns"]
    assert score.evidence["worst_turn"] == 3
    assert score.value == pytest.approx((sum(turns) / 4 + turns[3]) / 2, abs=1e-3)
    assert score.value < 0.5


def test_empty_turns_score_zero():
    assert value("") == 0.0
    assert fluency(Conversation(())).value == 0.0


def test_a_turn_scores_the_same_whatever_turns_surround_it():
    # All turns of a conversation are scored in one pass; no turn may leak into its neighbour's score.
    turns = ["", "う", NATURAL[2], "#kaggle https://t.co/x", CORRUPTED[4][1], "絵文字😇と\u3000全角空白", NATURAL[0]]
    score = fluency(debate(*turns))
    assert score.evidence["turns"] == [round(value(t), 4) for t in turns]


def reference_features(text: str) -> list[float]:
    """The features as defined text by text in plain Python, which the batch path computes for all texts at once."""
    model, a = _model(), analyse(text)
    word, link, end = a.costs
    kinds = [KIND[k] for k in a.keys]
    n, s = len(a.keys), a.surfaces
    word = [model.latin_cost if k == "l" else w for w, k in zip(word, kinds, strict=True)]
    links = [*link, end]
    soup = sum(len(run) for run in re.findall("p{4,}", "".join(kinds)))
    return [
        (sum(word) + 3 * model.prior[0]) / (n + 3) / 1000,
        (sum(links) + 3 * model.prior[1]) / (n + 1 + 3) / 1000,
        sum(c >= 1500 for c in links) / (n + 1),
        max(end_odds(model.ends, ending(text)), 0.0),
        min(end_odds(model.ends, ending(text)), 0.0),
        min(_loop_chars(text) / 6, 1.0),
        1.0 - len(set(zip(s, s[1:], s[2:], strict=False))) / (n - 2) if n > 4 else 0.0,
        kinds.count("u") / max(n, 1),
        kinds.count("a") / max(n, 1),
        soup / max(n, 1),
        kinds.count("p") / max(n, 1),
    ]


def test_batch_features_equal_the_per_text_definition_to_the_bit():
    texts = [*NATURAL, *(t for _, t in CORRUPTED), "う", "。", "ＡＢＣ１２３と😇", "草" * 300, "まぁ\u3000いいか"]
    assert features(texts) == [reference_features(t) for t in texts]
