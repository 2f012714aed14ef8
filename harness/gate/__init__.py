"""The cleaning gate: does a change to the cleaning rules make the trained model worse?"""
