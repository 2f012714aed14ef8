import pytest

from rubrics import relevance
from rubrics.records import Conversation, Turn
from rubrics.relevance import _known, _model, text_features


def value(text: str) -> float:
    return relevance(Conversation.from_text(text)).value


KAGGLE = [
    "Public LBでは上位だったのに、Privateで盛大にシェイクダウンした",
    "カグルで初めて銅メダルが取れて嬉しい",
    "チームマージの締め切りが今夜なので、一緒に組める人を探しています",
    "公開Notebookをforkして特徴量を足したらLBが伸びた",
    "Grandmasterの解法を読むと、CVの設計が本当に丁寧だ",
    "今日のsubmit枠はあと一回だけ残っている",
]
ML = [
    "ロジスティック回帰で分類モデルを作って、正則化の強さを調整した",
    "Transformerのファインチューニングで、学習率を下げたら安定した",
]
UNRELATED = [
    "オリンピックの柔道で日本代表が金メダルを獲得した",
    "料理コンテストで優勝したレシピを家で作ってみた",
    "新しいノートパソコンのバッテリーがすぐに切れる",
    "スマホゲームのランキングでついに百位以内に入った",
    "週末は家族で温泉旅行に行ってきた",
]


def mean(texts: list[str]) -> float:
    return sum(map(value, texts)) / len(texts)


@pytest.mark.parametrize("text", KAGGLE)
def test_kaggle_talk_ranks_above_unrelated_talk(text):
    assert value(text) > max(value(t) for t in UNRELATED)


@pytest.mark.parametrize("text", ML)
def test_general_ml_talk_ranks_above_unrelated_talk(text):
    assert value(text) > max(value(t) for t in UNRELATED)


def test_general_ml_talk_sits_between_on_average():
    assert mean(UNRELATED) < mean(ML) < mean(KAGGLE)


@pytest.mark.parametrize("text", UNRELATED)
def test_shared_surface_words_do_not_fool_it(text):
    assert value(text) < 0.3


def test_evidence_names_the_kaggle_cues():
    evidence = relevance(Conversation.from_text("LBとCVの差が大きくてシェイクが怖い")).evidence
    assert evidence["kaggle"] > 0.5
    assert {"lb", "cv"} & set(evidence["kaggle_cues"])


@pytest.mark.parametrize(
    "texts",
    [
        KAGGLE,
        ML + UNRELATED,
        ["新しいノートパソコンで銅メダル"],  # a lemma with a space: "パソコン-personal computer"
        ["", "。", "LB"],
        [],
    ],
)
def test_the_batch_path_finds_exactly_the_text_features_the_model_weighs(texts):
    model = _model()
    conversation = Conversation(tuple(Turn("AB"[i % 2], t) for i, t in enumerate(texts)))
    batch = [Conversation.from_text("LBが怖い"), conversation, Conversation.from_text("CVを信じろ")]
    which, found = _known(batch, model)
    assert [model.features[f] for f in found[which == 1]] == sorted(text_features(texts) & set(model.features))
