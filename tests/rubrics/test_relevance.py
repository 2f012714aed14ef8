import pytest

from rubrics import relevance
from rubrics.records import Conversation, Turn
from rubrics.relevance import _known, _model, read, text_features, topic_classes


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
    which, found = _known(["LBが怖い", *texts, "CVを信じろ"], model)  # a conversation's turns amid other texts
    expected = text_features(texts, set(model.features)) & set(model.features)
    turns = (which >= 1) & (which <= len(texts))
    assert sorted({model.features[f] for f in found[turns]}) == sorted(expected)
    for i, text in enumerate(texts, 1):  # and each turn's own features, each once
        assert [model.features[f] for f in found[which == i]] == sorted(
            text_features([text], set(model.features)) & set(model.features)
        )


# Medals, ranks, scores, contests and notebooks outside Kaggle, with numerals (the cases first).
CONTEXT_NEGATIVES = [
    "日本は金20、銀12、銅13で計45個のメダルを獲得した。",
    "合唱祭の結果は金賞1組、銀賞3組、銅賞5組でした。",
    "吹奏楽コンクールで金賞を取って、支部大会に進むことになった",
    "期末テストの学年順位が15位から4位に上がった",
    "サッカーの順位表を見ると、首位との勝ち点差はまだ6ある",
    "早押しクイズの決勝は、最後の1問で逆転されて2位だった",
    "方眼ノートを5冊まとめ買いしたら、1冊おまけがついてきた",
]
# Kaggle talk without the word Kaggle.
JARGON = [
    "金圏ボーダーまであと0.001なので、最後のサブに賭ける",
    "fork したNotebookをちょっと直しただけでLBが上がった",
    "チームマージの期限が明日なので、CVの近い人に声をかけた",
    "Publicで銀圏だったのに、Privateでshakeして圏外に落ちた",
]


@pytest.mark.parametrize("text", CONTEXT_NEGATIVES)
def test_medals_ranks_and_contests_outside_kaggle_are_not_kaggle(text):
    assert value(text) < 0.5


@pytest.mark.parametrize("text", JARGON)
def test_kaggle_jargon_without_the_word_kaggle_is_kaggle(text):
    assert value(text) > 0.8


def test_numbers_carry_no_topic():
    assert value("日本は金20、銀12、銅13で計45個のメダルを獲得した。") == value(
        "日本は金7、銀5、銅9で計21個のメダルを獲得した。"
    )


def test_a_tag_is_an_artefact_not_talk():
    assert value("最近は毎週末に山登りしてる #kaggle") == value("最近は毎週末に山登りしてる")
    assert value("最近は毎週末に山登りしてる #kaggle") < 0.3
    assert read("山登り #kaggle https://t.co/x").surfaces == read("山登り").surfaces


def test_a_number_loop_is_not_kaggle_talk():
    loop = value("今回はCV LB 0.0002 0.8812 0.8812 0.8812 0.8812 0.")
    assert loop < 0.8 < value("今回はCVとLBの差が大きいので、最終サブはCVで選ぶ")
    assert value("今回のコンペ、CVは0.912なのにPublic LBが0.89で全然合わない") > 0.9  # scores in talk still count


def test_a_word_the_model_never_saw_reads_through_its_class():
    model = _model()
    assert "陸上" not in model.features and topic_classes()["陸上"] == topic_classes()["卓球"]
    assert topic_classes()["陸上"] in text_features(["陸上の大会"], set(model.features))
    assert topic_classes()["大会"] not in text_features(["陸上の大会"], {"大会"})  # known words stand for themselves


def _debate(*texts: str) -> Conversation:
    return Conversation(tuple(Turn("AB"[i % 2], t) for i, t in enumerate(texts)))


def test_one_kaggle_word_among_filler_turns_is_not_a_kaggle_debate():
    # The drifting model's debate: one turn names Kaggle, the rest is filler (the written scale's 2).
    filler = _debate("Kaggleはないと思う。それはそれでもない", "それはそれでもないと思う", "それはそれでもない", "")
    assert relevance(filler).value < 0.5
    assert relevance(filler).evidence["turns"][1:] == [pytest.approx(0.0, abs=0.1)] * 2 + [0.0]  # empty turn: 0


def test_a_natural_kaggle_debate_whose_replies_carry_no_jargon_stays_kaggle_talk():
    debate = _debate(
        "Private LBのshake upなんて、結局ただの運ゲーでしょ。",
        "運の要素はあるけど、毎回上位に残る人がいるのは偶然じゃないよ。",
        "それはそうかもしれないけど、100位くらい落ちたときは本当に心が折れた。",
        "分かる。だからこそ、手元の検証をちゃんと作り込むのが大事なんだよね。",
    )
    # Two replies name nothing Kaggle: the per-turn reading alone gives 0.48, the two readings together 0.70 (a
    # careful reader says 5, i.e. 1.0: the known cost of reading coverage, README "Rubrics").
    assert relevance(debate).value > 0.65
    assert relevance(debate).evidence["kaggle"] > 0.99
