"""Kaggle critic vs Kaggle fan: does LoRA on Kaggle tweets teach the topic without teaching tweet artefacts?"""

from harness import EMBEDDED, DataSpec, Experiment, LoraSpec, ModelSpec, Profile, Scenario, TrainingSpec
from harness.cleaning import default_tweet_rules
from harness.experiment import GateSpec
from rubrics import contamination, fluency, relevance

debate = ("Kaggleアンチ", "Kaggleファン")

experiment = Experiment(
    model=ModelSpec("abeja/gpt-neox-japanese-2.7b", dtype="bfloat16"),
    lora=LoraSpec(r=8, alpha=16, dropout=0.05, target_modules=("query_key_value",)),
    data=DataSpec("data/kaggle_tweets.jsonl", text_field="text", block_size=128),
    cleaning=default_tweet_rules(),
    scenarios=(
        Scenario("monthly-kaggle", "月刊Kaggleは役に立たない", debate, turns=4),
        Scenario("medal-first", "メダル至上主義がKaggleをつまらなくしている", debate, turns=4),
        Scenario("notebook-fork", "公開Notebookをforkしただけでメダルを取るのはずるい", debate, turns=4),
        Scenario("shake-up", "Private LBのshake upはただの運ゲーだ", debate, turns=4),
        Scenario("real-work", "Kaggleの経験は実務で役に立たない", debate, turns=4),
        Scenario("team-merge", "締切直前のチームマージはメダル狙いでしかない", debate, turns=4),
        Scenario("compute", "GPUを持っている人しかKaggleで勝てない", debate, turns=4),
        Scenario("trust-cv", "Public LBを信じて最終subを選ぶのは初心者だけだ", debate, turns=4),
    ),
    rubrics=(relevance, contamination, fluency),
    training=TrainingSpec(max_steps=600, learning_rate=2e-4, batch_size=8, warmup_steps=30, logging_steps=10),
    eval_every=100,
    cpu=Profile(
        model=ModelSpec(EMBEDDED, dtype="float32"),
        lora=LoraSpec(
            r=32, alpha=64, dropout=0.0, target_modules=("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
        ),
        training=TrainingSpec(max_steps=240, learning_rate=3e-3, batch_size=16, warmup_steps=10, logging_steps=10),
        eval_every=40,
    ),
    # Tolerances: README "Cleaning and the gate" (paired data checks and probes; generation relevance and fluency
    # swing too much between seeds to gate on, so they are reported).
    gate=GateSpec(tolerances={"contamination": 0.02}),
)
