"""The reference story's mistake: the same debate experiment fine-tuned on raw, uncleaned tweets."""

import dataclasses

import experiments.kaggle_debate as cleaned

experiment = dataclasses.replace(cleaned.experiment, cleaning=())
