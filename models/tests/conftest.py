"""Shared pytest fixtures. Run from the workspace root: models/.venv/bin/python -m pytest models/tests -q"""

import os
import sys

import pytest

MODELS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, MODELS_DIR)

import data


@pytest.fixture(scope="session")
def vocab():
    return data.load_vocab()


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory, vocab):
    """A small synthetic data set in the real one's format (train.bin, valid.bin, manifest.json)."""
    out = tmp_path_factory.mktemp("synthetic-dataset")
    data.write_synthetic_dataset(str(out), vocab, train_songs=40, valid_songs=8, bars=12, seed=0)
    return str(out)
