"""``robomr lm train|unite|eval|generate`` through their argument parsers, on a tiny fake corpus."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from robomr_nodes.cli import cmd_lm
from robomr_nodes.cli.main import CliError

_spec = importlib.util.spec_from_file_location(
    "lm_test_corpus", Path(__file__).with_name("test_corpus.py")
)
_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_corpus)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="robomr")
    cmd_lm.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lm", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("lm")
    wordnet = _corpus.write_fake_wordnet(root / "wordnet", n=120)
    out = root / "runs"
    assert run_cli("train", "--out", str(out), "--variants", "mixsga", "--seeds", "0",
                   "--steps", "2", "--batch-size", "2", "--experts", "2",
                   "--wordnet-dir", str(wordnet)) == 0  # fmt: skip
    return out / "mixsga-s0.safetensors", wordnet


def test_train_writes_weights_and_prints_the_record(trained, capsys):
    model, _ = trained
    assert model.is_file() and model.with_suffix(".json").is_file()


def test_eval_prints_each_brownout_level(trained, capsys):
    model, wordnet = trained
    assert run_cli("eval", "--model", str(model), "--wordnet-dir", str(wordnet),
                   "--tau", "1", "--tau", "0", "--max-tokens", "256") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "tau 1.00: test ppl" in out and "tau 0.00 (aligned merge): test ppl" in out


def test_unite_writes_united_experts_that_eval_then_serves(trained, capsys):
    model, wordnet = trained
    assert run_cli("unite", "--model", str(model), "--wordnet-dir", str(wordnet),
                   "--windows", "4", "--steps", "3", "--batch-tokens", "64",
                   "--val-tokens", "256") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "2 experts merged: val ppl aligned" in out and "distilled" in out
    united = model.with_name("mixsga-s0.united.safetensors")
    assert united.is_file() and united.with_suffix(".json").is_file()
    assert run_cli("eval", "--model", str(model), "--wordnet-dir", str(wordnet),
                   "--tau", "0", "--max-tokens", "256") == 0  # fmt: skip
    assert "tau 0.00 (distilled merge): test ppl" in capsys.readouterr().out
    assert run_cli("eval", "--model", str(model), "--wordnet-dir", str(wordnet),
                   "--tau", "0", "--merge", "aligned", "--max-tokens", "256") == 0  # fmt: skip
    assert "tau 0.00 (aligned merge)" in capsys.readouterr().out
    assert run_cli("generate", "the robot", "--model", str(model), "--max-tokens", "3",
                   "--tau", "0", "--merge", "distilled") == 0  # fmt: skip
    assert capsys.readouterr().out.endswith("\n")
    with pytest.raises(CliError, match="out of bounds"):
        run_cli("generate", "the robot", "--model", str(model), "--tau", "1.5")
    for flag, value, match in (("--steps", "0", "steps"), ("--seed", "-1", "seed"),
                               ("--val-tokens", "0", "val-tokens")):  # fmt: skip
        with pytest.raises(CliError, match=match):
            run_cli("unite", "--model", str(model), "--wordnet-dir", str(wordnet), flag, value)
    united.unlink()  # the other tests of this module read the model without them
    united.with_suffix(".json").unlink()


def test_generate_streams_text(trained, capsys):
    model, _ = trained
    assert run_cli("generate", "the robot", "--model", str(model), "--max-tokens", "3") == 0
    assert capsys.readouterr().out.endswith("\n")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["train", "--out", "x", "--variants", "bert"], "unknown variant"),
        (["eval", "--model", "missing.safetensors"], "not found"),
        (["generate", "hi", "--model", "missing.safetensors"], "not found"),
    ],
)
def test_user_errors_are_cli_errors(argv, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CliError, match=match):
        run_cli(*argv)


def test_prompt_longer_than_the_context_is_a_cli_error(trained):
    model, _ = trained
    with pytest.raises(CliError, match="context"):
        run_cli("generate", "word " * 300, "--model", str(model), "--max-tokens", "3")
