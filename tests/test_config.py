from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from infra.config import ConfigError, load_config, parse_cli, split_overrides
from infra.model_spec import available_model_specs, load_model_spec, prompt_names


@dataclass
class Inner:
    rank: int = 8
    alpha: float = 16.0


@dataclass
class Recipe:
    model: str
    steps: int = 10
    lr: float = 2e-4
    layers: list[int] = field(default_factory=list)
    lora: Inner = field(default_factory=Inner)
    tag: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("key 'steps' must be at least 1")


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_good_file_with_nested_and_overrides(tmp_path):
    path = write(tmp_path, "model: m\nsteps: 3\nlr: 1e-3\nlora:\n  rank: 64\n")
    recipe = load_config(Recipe, path, {"lora.alpha": 32, "layers": "3,7"})
    assert recipe == Recipe(model="m", steps=3, lr=1e-3, layers=[3, 7], lora=Inner(rank=64, alpha=32.0))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model: m\nstepz: 3\n", "unknown key 'stepz'"),
        ("model: m\nsteps: three\n", "key 'steps': expected an integer, got 'three'"),
        ("steps: 3\n", "missing required key 'model'"),
        ("model: m\nlora:\n  rnk: 4\n", "unknown key 'rnk'"),
        ("model: m\nsteps: 0\n", "must be at least 1"),
        ("model: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(Recipe, path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_cli_flags_override_file(tmp_path):
    path = write(tmp_path, "model: m\nsteps: 3\n")
    recipe = parse_cli(Recipe, ["--config", str(path), "--steps=5", "--layers", "1,2", "--tag", "x"])
    assert (recipe.model, recipe.steps, recipe.layers, recipe.tag) == ("m", 5, [1, 2], "x")


def test_cli_error_exits_2_with_message(capsys):
    with pytest.raises(SystemExit) as info:
        parse_cli(Recipe, ["--model", "m", "--bogus=1"])
    assert info.value.code == 2
    assert "unknown key 'bogus'" in capsys.readouterr().err


def test_split_overrides_forms():
    path, overrides = split_overrides(["--a=1", "--b", "x y", "--flag", "--list=[1, 2]"])
    assert path is None
    assert overrides == {"a": 1, "b": "x y", "flag": True, "list": [1, 2]}


@pytest.mark.parametrize("name", available_model_specs())
def test_every_model_config_validates(name):
    spec = load_model_spec(name)
    assert spec.num_layers >= 8
    assert set(spec.tasks) == set(prompt_names())  # every registered task has a prompt
    assert spec.response_template


def test_model_config_errors_name_key(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nhub_id: x\nnum_layers: 8\nsupports_system_turn: maybe\nresponse_template: r\n")
    with pytest.raises(ConfigError, match=r"m.yaml: key 'supports_system_turn': expected true or false"):
        load_model_spec(str(path))
    with pytest.raises(ConfigError, match="no such model config"):
        load_model_spec("no-such-model")


def test_repeated_scalar_flag_keeps_the_last_and_list_flag_collects():
    from dataclasses import dataclass, field

    from infra.config import from_dict, split_overrides

    @dataclass
    class Options:
        learning_rate: float = 1.0
        data: list[str] = field(default_factory=list)

    _, overrides = split_overrides(
        ["--learning_rate", "1e-3", "--data", "a=1", "--learning_rate=1e-4", "--data", "b=2"]
    )
    assert from_dict(Options, overrides) == Options(learning_rate=1e-4, data=["a=1", "b=2"])
