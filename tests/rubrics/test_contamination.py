import json

import pytest

from rubrics import contamination
from rubrics.contamination import find_artefacts, strip_artefacts
from rubrics.records import Conversation, Turn

ARTEFACTS = [
    ("今日から新しいコンペに参加します #Kaggle", [("hashtag", "#Kaggle")]),
    ("EDAだけで一日が終わった＃機械学習", [("hashtag", "＃機械学習")]),
    ("毎月言われてる#月刊Kaggleは役に立たない", [("hashtag", "#月刊Kaggleは役に立たない")]),
    ("#kaggle #データ分析 初メダル", [("hashtag", "#kaggle"), ("hashtag", "#データ分析")]),
    ("#2024年の振り返り", [("hashtag", "#2024年の振り返り")]),
    ("詳細はhttps://t.co/AbC123。", [("url", "https://t.co/AbC123")]),
    ("短縮はt.co/xyz です", [("url", "t.co/xyz")]),
    ("bit.ly/3abcで見られます", [("url", "bit.ly/3abc")]),
    ("ページはkaggle.com/competitions/titanicです", [("url", "kaggle.com/competitions/titanic")]),
    ("公式はwww.example.comにあります", [("url", "www.example.com")]),
    ("スクショ pic.twitter.com/AbC123", [("url", "pic.twitter.com/AbC123")]),
    ("（https://note.com/u/n/n1）参照", [("url", "https://note.com/u/n/n1")]),
    ("https://example.com/#section を見て", [("url", "https://example.com/#section")]),
    ("@kaggle_jp 楽しかったです", [("mention", "@kaggle_jp")]),
    ("＠shake_taro さんの解法", [("mention", "＠shake_taro")]),
    ("勉強会で@data_hanakoさんと話せた", [("mention", "@data_hanako")]),
    ("RT @kaggle_news: 新コンペ", [("mention", "RT @kaggle_news:")]),
    ("RT @a_b: 見て https://t.co/x #LB", [("mention", "RT @a_b:"), ("url", "https://t.co/x"), ("hashtag", "#LB")]),
]

NOT_ARTEFACTS = [
    "C#でデータの前処理を書いた",
    "F#は関数型なので書きやすい",
    "今回は #1 のモデルが一番よかった",
    "順位は＃３、悔しい",
    "train.csvとtest.csvを読み込んだ",
    "Pythonを3.11.4にアップデートした",
    "model.pyとREADME.mdとnotebook.ipynbを整理した",
    "質問はtaro.yamada@example.comまで",
    "連絡先：kaggle-team@example.co.jp",
    "df.info()でデータ型を確認した",
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
def test_file_names_versions_emails_and_csharp_are_not_artefacts(text):
    assert find_artefacts(text) == []
    assert contamination(Conversation.from_text(text)).value == 0.0


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
