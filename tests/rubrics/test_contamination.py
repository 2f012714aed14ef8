import json

import pytest

from rubrics import contamination
from rubrics.contamination import find_artefacts, strip_artefacts
from rubrics.records import Conversation, Turn
from rubrics.validate import DEFAULT, contamination_agreement

ARTEFACTS = [
    ("今日から新しいコンペに参加します #Kaggle", [("hashtag", "#Kaggle")]),
    ("EDAだけで一日が終わった＃機械学習", [("hashtag", "＃機械学習")]),
    ("初メダル獲得#機械学習#kaggle", [("hashtag", "#kaggle")]),  # a tag a `#` follows is none (Twitter)
    ("毎月言われてる#月刊Kaggleは役に立たない", [("hashtag", "#月刊Kaggleは役に立たない")]),
    ("#kaggle #データ分析 初メダル", [("hashtag", "#kaggle"), ("hashtag", "#データ分析")]),
    ("#2024年の振り返り", [("hashtag", "#2024年の振り返り")]),
    ("#100日後にGMになる 今日はEDAだけ", [("hashtag", "#100日後にGMになる")]),
    ("LB更新で10位まで上がった！＃ｋａｇｇｌｅ", [("hashtag", "＃ｋａｇｇｌｅ")]),
    ("（#atmaCup）の振り返りを書いた", [("hashtag", "#atmaCup")]),
    ("詳細はhttps://t.co/AbC123。", [("url", "https://t.co/AbC123")]),
    ("短縮はt.co/xyz です", [("url", "t.co/xyz")]),
    ("bit.ly/3abcで見られます", [("url", "bit.ly/3abc")]),
    ("ページはkaggle.com/competitions/titanicです", [("url", "kaggle.com/competitions/titanic")]),
    ("公式はwww.example.comにあります", [("url", "www.example.com")]),
    ("スクショ pic.twitter.com/AbC123", [("url", "pic.twitter.com/AbC123")]),
    ("（https://note.com/u/n/n1）参照", [("url", "https://note.com/u/n/n1")]),
    ("https://example.com/#section を見て", [("url", "https://example.com/#section")]),
    # A URL is whole: query, fragment and balanced parentheses belong to it.
    (
        "解説動画 https://www.youtube.com/watch?v=LOxOAuDHzaw&t=95s",
        [("url", "https://www.youtube.com/watch?v=LOxOAuDHzaw&t=95s")],
    ),
    (
        "まとめました→https://zenn.dev/kaggler/articles/lgbm-tips?utm_source=twitter&utm_medium=social",
        [("url", "https://zenn.dev/kaggler/articles/lgbm-tips?utm_source=twitter&utm_medium=social")],
    ),
    (
        "CVの切り方はここ kaggle.com/code/u/cv-strategy#GroupKFold が詳しい",
        [("url", "kaggle.com/code/u/cv-strategy#GroupKFold")],
    ),
    (
        "定義はhttps://en.wikipedia.org/wiki/Kappa_(statistics)を参照",
        [("url", "https://en.wikipedia.org/wiki/Kappa_(statistics)")],
    ),
    ("記事(https://qiita.com/u/items/abc)に書いた", [("url", "https://qiita.com/u/items/abc")]),
    (
        "参加記です。まとめた→zenn.dev/polars_ni_ikou/articles/fe-kaggle",
        [("url", "zenn.dev/polars_ni_ikou/articles/fe-kaggle")],
    ),
    ("モデルはhuggingface.co/rinna/japanese-gpt2-small にある", [("url", "huggingface.co/rinna/japanese-gpt2-small")]),
    ("ブログ移転しました kaggler-diary.github.io", [("url", "kaggler-diary.github.io")]),
    ("@kaggle_jp 楽しかったです", [("mention", "@kaggle_jp")]),
    ("＠shake_taro さんの解法", [("mention", "＠shake_taro")]),
    ("勉強会で@data_hanakoさんと話せた", [("mention", "@data_hanako")]),
    ("RT @kaggle_news: 新コンペ", [("mention", "RT @kaggle_news:")]),
    ("RT@lgbm_taro 金圏きた", [("mention", "RT@lgbm_taro")]),
    ("RT＠lgbm_hanako：初submitした", [("mention", "RT＠lgbm_hanako：")]),
    ("RT @a_b: 見て https://t.co/x #LB", [("mention", "RT @a_b:"), ("url", "https://t.co/x"), ("hashtag", "#LB")]),
]

NOT_ARTEFACTS = [
    # C#-style names and rank or episode numbering.
    "C#でデータの前処理を書いた",
    "F#は関数型なので書きやすい",
    "C#/.NETでML.NETを試してみた",
    "ASP.NETで社内向けの予測APIを作った",
    "今回は #1 のモデルが一番よかった",
    "順位は＃３、悔しい",
    "Kaggle Meetup Tokyo #6の参加記を書きました",
    "順位は#1ではなく、3位でした",
    "#1のチームはGBDTだけで勝っていた",
    "前回は#3位だったので今回こそ",
    "今回の#1解法はCV設計の説明だけで1ページある",
    # Tags inside a word (Twitter links none of these) and a `#` that ends a tag.
    "ハッシュタグ#機械学習 は付けない派",
    "Kaggle#CV の話",
    # File names, code, versions, e-mail addresses and invalid TLDs.
    "train.csvとtest.csvを読み込んだ",
    "Pythonを3.11.4にアップデートした",
    "model.pyとREADME.mdとnotebook.ipynbを整理した",
    "best.ptを保存してからtrain.zipを消した",
    "df.info()でデータ型を確認した",
    "model.fitの引数にeval_setを渡す",
    "libcudnn.so.8が見つからないと怒られた",
    "質問はtaro.yamada@example.comまで",
    "連絡先：kaggle-team@example.co.jp",
    "寄稿は monthly.kg.editor@example.com まで",
    "http://localhost:8888 でJupyterが立ち上がった",
    "foo.baz のようなドメインは存在しない",
    "Kaggleで初めて銀メダルを取りました",
    "AUCは0.912、F1は0.78でした",
    "見出しは## 概要 のように書く",
]


@pytest.mark.parametrize(("text", "expected"), ARTEFACTS)
def test_finds_each_artefact_with_its_exact_span(text, expected):
    spans = find_artefacts(text)
    assert [(s["kind"], s["text"]) for s in spans] == expected
    assert all(text[s["start"] : s["end"]] == s["text"] for s in spans)


@pytest.mark.parametrize("text", NOT_ARTEFACTS)
def test_numbering_code_file_names_emails_and_csharp_are_not_artefacts(text):
    assert find_artefacts(text) == []
    assert contamination(Conversation.from_text(text)).value == 0.0


def test_valid_tlds_come_from_the_public_suffix_list_not_a_hand_list():
    found = [
        s["text"] for s in find_artefacts("会社はexample.みんなとsample.tokyoとdemo.co.ukに移った、foo.comm は違う")
    ]
    assert found == ["example.みんな", "sample.tokyo", "demo.co.uk"]


@pytest.mark.parametrize(
    "text",
    [
        "資料はこちら https://speakerdeck.com/u/kaggle-intro?slide=12 です",
        "公開しました→https://www.kaggle.com/code/u/eda?scriptVersionId=123456#Feature-Engineering。",
        "元ネタ http://en.wikipedia.org/wiki/Shake_(Kaggle) だそう",
    ],
)
def test_stripping_leaves_nothing_of_a_url(text):
    stripped = strip_artefacts(text)
    assert not any(piece in stripped for piece in ("?", "=", "#", "http", "/", ".com", "(Kaggle"))


def test_evidence_counts_artefacts_across_turns_and_is_json():
    conv = Conversation((Turn("A", "見て #Kaggle"), Turn("B", "RT @jp: 延長 https://t.co/x"), Turn("A", "助かる")))
    score = contamination(conv)
    assert score.evidence["count"] == 3
    assert [(s["turn"], s["kind"]) for s in score.evidence["spans"]] == [(0, "hashtag"), (1, "mention"), (1, "url")]
    assert json.loads(json.dumps(score.evidence)) == dict(score.evidence)


def test_more_artefacts_score_higher():
    values = [
        contamination(Conversation.from_text(t)).value for t in ("参加した", "参加した #kaggle", "@a 参加 #kaggle")
    ]
    assert values == sorted(values) and values[0] == 0.0 and values[2] < 1.0


def test_strip_artefacts_leaves_the_language():
    assert strip_artefacts("RT @jp: 新コンペ開始 https://t.co/x #Kaggle") == "新コンペ開始"


def test_the_validation_set_covers_every_hard_kind_and_each_is_exact():
    result = contamination_agreement(DEFAULT / "contamination.jsonl")
    hard = {"url_query", "url_bare", "invalid_tld", "numbering", "csharp", "rt", "tag_in_word", "fullwidth"}
    assert hard <= set(result["kinds"])
    assert {k: v for k, v in result["kinds"].items() if v < 1.0} == {} and result["false_positives"] == 0
