"""okdbot.yaml: sources, links to exact lines, and errors that name key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from okdbot.config import Source, load_settings
from okdbot.errors import ConfigError


def _load(tmp_path: Path, text: str):
    (tmp_path / "okdbot.yaml").write_text(text, encoding="utf-8")
    return load_settings(tmp_path / "okdbot.yaml", env={})


def test_sources_resolve_relative_to_the_config(tmp_path):
    s = _load(tmp_path, "sources:\n  - name: n\n    path: notes\n    url: https://github.com/o/r/blob/main/docs/\n")
    assert s.sources[0].path == (tmp_path / "notes").resolve()
    assert s.index_dir == (tmp_path / "index").resolve()


def test_github_links_open_the_exact_lines():
    src = Source("n", Path("/x"), url="https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/")
    assert src.link_for("Day26.md", 29, 31) == (
        "https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/Day26.md?plain=1#L29-L31")


def test_link_template_and_non_ascii_paths():
    src = Source("n", Path("/x"), url="https://git.example.org/notes/", link="{base}{path}?line={start}-{end}")
    assert src.link_for("주간/메모 1.md", 3, 4) == (
        "https://git.example.org/notes/%EC%A3%BC%EA%B0%84/%EB%A9%94%EB%AA%A8%201.md?line=3-4")


def test_unknown_key_is_named_with_its_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "sources:\n  - name: n\n    path: notes\n    colour: red\n")
    assert "colour" in str(err.value) and "okdbot.yaml:4" in str(err.value)


def test_wrong_type_is_named_with_its_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "index: idx\nretrieval:\n  k: five\n")
    assert "'k'" in str(err.value) and "okdbot.yaml:3" in str(err.value) and "int" in str(err.value)


def test_malformed_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "sources:\n  - name: n\n   path: [notes\n")
    assert "malformed YAML" in str(err.value) and "okdbot.yaml:" in str(err.value)
    assert "\n" not in str(err.value)


def test_corpus_flag_replaces_sources(tmp_path):
    (tmp_path / "okdbot.yaml").write_text("sources:\n  - name: n\n    path: notes\n", encoding="utf-8")
    s = load_settings(tmp_path / "okdbot.yaml", corpus=tmp_path / "other", source_url="https://h/x/", env={})
    assert [x.path for x in s.sources] == [(tmp_path / "other").resolve()]
    assert s.sources[0].url == "https://h/x/"


def test_corpus_flag_naming_a_configured_folder_keeps_that_source(tmp_path):
    (tmp_path / "okdbot.yaml").write_text(
        "sources:\n  - name: n\n    path: notes\n    glob: '*.md'\n    url: https://github.com/o/r/blob/main/\n",
        encoding="utf-8")
    kept = load_settings(tmp_path / "okdbot.yaml", corpus=tmp_path / "notes", env={}).sources
    assert [(x.name, x.glob, x.url) for x in kept] == [("n", "*.md", "https://github.com/o/r/blob/main/")]
    moved = load_settings(tmp_path / "okdbot.yaml", corpus=tmp_path / "notes", source_url="https://h/x/", env={})
    assert [(x.name, x.glob, x.url) for x in moved.sources] == [("n", "*.md", "https://h/x/")]


SOURCE = "sources:\n  - name: n\n    path: notes\n    url: https://github.com/o/r/blob/main/docs/\n"


@pytest.mark.parametrize("template, needle", [
    ("{base}{path}#L{start}-{nope}", "{nope}"),
    ("{base}{path}#L{0}", "{0}"),
    ("{base}{path.upper}", "{path.upper}"),
    ("{base}#L{start}", "{path}"),
    ("{base}{path}#L{start:q}", "as they are"),
    ("{base}{path}#L{start", "not a valid template"),
    ("{base}{path}#L{start:>50000000}-L{end}", "as they are"),  # every answer 50 MB long
    ("{base}{path}#L{start:x}-L{end}", "as they are"),  # line numbers in hex
    ("{base}{path!r}", "as they are"),
])
def test_a_link_template_that_cannot_make_links_is_refused_at_load(tmp_path, template, needle):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, SOURCE + f"    link: \"{template}\"\n")
    message = str(err.value)
    assert "okdbot.yaml:5" in message and "sources.link" in message and needle in message, message


def test_a_link_template_is_refused_before_anything_runs(tmp_path):
    from .conftest import run_cli

    (tmp_path / "okdbot.yaml").write_text(SOURCE + "    link: \"{base}{path}#L{start}-{nope}\"\n", encoding="utf-8")
    proc = run_cli("query", "Skopeo가 뭐야?", cwd=tmp_path)
    assert proc.returncode == 2 and "internal error" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "{nope}" in proc.stderr
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("url", ["https://github.com/o/r/blob/main/docs", "https://github.com/o/r/blob/main/docs/"])
def test_a_source_url_without_trailing_slash_is_joined_as_a_folder(tmp_path, url):
    (tmp_path / "okdbot.yaml").write_text(SOURCE, encoding="utf-8")
    adhoc = load_settings(tmp_path / "okdbot.yaml", corpus=tmp_path / "other", source_url=url, env={})
    configured = _load(tmp_path, SOURCE.replace("https://github.com/o/r/blob/main/docs/", url))
    for source in (adhoc.sources[0], configured.sources[0]):
        assert source.link_for("Day26.md", 29, 29) == (
            "https://github.com/o/r/blob/main/docs/Day26.md?plain=1#L29-L29")


@pytest.mark.parametrize("url", ["github.com/o/r/blob/main/docs/", "ftp://h/x/", "https://"])
def test_a_source_url_that_is_no_web_address_is_refused(tmp_path, url):
    with pytest.raises(ConfigError, match="http"):
        _load(tmp_path, SOURCE.replace("https://github.com/o/r/blob/main/docs/", url))
    (tmp_path / "okdbot.yaml").write_text(SOURCE, encoding="utf-8")
    with pytest.raises(ConfigError, match="--source-url"):
        load_settings(tmp_path / "okdbot.yaml", corpus=tmp_path, source_url=url, env={})


@pytest.mark.parametrize("section, key, value, needle", [
    ("retrieval", "k", "0", "between 1 and 50"),
    ("retrieval", "k", "51", "between 1 and 50"),
    ("retrieval", "coverage_threshold", ".nan", "finite"),
    ("retrieval", "coverage_threshold", "-0.1", "between 0 and 1"),
    ("retrieval", "coverage_threshold", "1.5", "between 0 and 1"),
    ("retrieval", "gap_threshold", ".inf", "finite"),
    ("retrieval", "gap_threshold_korean", "-2", "between 0 and 2"),
    ("retrieval", "dense_candidates", "0", "at least 1"),
    ("retrieval", "heading_boost", "-0.5", "at least 0"),
    ("retrieval", "lexical_weight", ".nan", "finite"),
    ("model", "batch_size", "0", "at least 1"),
    ("discord", "cooldown_seconds", "-5", "at least 0"),
    ("discord", "cooldown_rate", "-1", "at least 0"),
    ("retrieval", "hnsw_m", "99999999999999999999999", "between 2 and 256"),
    ("retrieval", "hnsw_ef_search", "99999999999999", "between 1 and 100000"),
    ("retrieval", "faiss", "ivf", "one of 'flat', 'hnsw'"),
    ("discord", "shards", "-1", "at least 0"),
    ("watch", "debounce_ms", "-5", "at least 0"),
    ("model", "backend", "gpu", "one of 'auto', 'onnx', 'torch'"),
])
def test_numbers_out_of_range_are_refused_with_their_line(tmp_path, section, key, value, needle):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, SOURCE + f"{section}:\n  {key}: {value}\n")
    message = str(err.value)
    assert "okdbot.yaml:6" in message and f"{section}.{key}" in message and needle in message, message


def test_everything_okdbot_writes_is_in_one_state_folder(tmp_path):
    from okdbot.config import heartbeat_path
    from okdbot.feedback import feedback_path

    default = _load(tmp_path, SOURCE)  # as before: the index beside the config, the rest beside the index
    assert default.data_dir == tmp_path.resolve() and default.index_dir == (tmp_path / "index").resolve()
    assert feedback_path(default) == tmp_path.resolve() / "feedback.sqlite"
    assert heartbeat_path(default, env={}) == tmp_path.resolve() / "heartbeat.json"

    configured = _load(tmp_path, SOURCE + "index: index\ndata: state\ndiscord:\n  feedback_db: votes.sqlite\n")
    state = (tmp_path / "state").resolve()
    assert configured.data_dir == state and configured.index_dir == state / "index"
    assert feedback_path(configured) == state / "votes.sqlite" and heartbeat_path(configured, env={}) == state / "heartbeat.json"
    assert configured.sources[0].path == (tmp_path / "notes").resolve()  # notes stay relative to the config

    data = tmp_path / "elsewhere"
    from_env = load_settings(tmp_path / "okdbot.yaml", env={"OKDBOT_DATA": str(data)})
    assert from_env.data_dir == data.resolve() and from_env.index_dir == data.resolve() / "index"
    flagged = load_settings(tmp_path / "okdbot.yaml", index=tmp_path / "idx", env={"OKDBOT_DATA": str(data)})
    assert flagged.index_dir == (tmp_path / "idx").resolve() and feedback_path(flagged) == data.resolve() / "votes.sqlite"
    assert heartbeat_path(flagged, env={"OKDBOT_HEARTBEAT": "/run/hb.json"}) == Path("/run/hb.json")


@pytest.mark.parametrize("glob, needle", [("", "empty"), ("/etc/*", "relative"), ("../*.md", "'..'"),
                                          ("**/../../secret/*.md", "'..'")])
def test_a_glob_that_is_empty_or_leaves_the_source_folder_is_refused_with_its_line(tmp_path, glob, needle):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, SOURCE + f"    glob: \"{glob}\"\n")
    message = str(err.value)
    assert "okdbot.yaml:5" in message and "sources.glob" in message and needle in message, message


@pytest.mark.parametrize("text", ["? [a, b]\n: 1\n", "sources:\n  - ? {path: notes}\n    : x\n"])
def test_a_key_that_is_not_a_plain_name_is_refused_with_its_line(tmp_path, text):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert "okdbot.yaml:" in str(err.value) and "plain name" in str(err.value), str(err.value)


def test_a_folder_given_as_a_yaml_file_is_named_as_a_folder(tmp_path):
    from okdbot.config import compose_yaml
    from okdbot.errors import EvalError

    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path, env={})
    assert "is a folder" in str(err.value) and "not found" not in str(err.value), str(err.value)
    with pytest.raises(ConfigError, match="is a folder"):
        load_settings(env={"OKDBOT_CONFIG": str(tmp_path)})
    with pytest.raises(ConfigError, match="/dev/null is not a regular file"):
        load_settings(env={"OKDBOT_CONFIG": "/dev/null"})
    with pytest.raises(EvalError) as err:
        compose_yaml(tmp_path, "question file", EvalError)
    assert "is a folder" in str(err.value) and "UTF-8" not in str(err.value), str(err.value)


def test_a_path_whose_name_is_not_utf8_is_refused_before_anything_runs(tmp_path, okdbot_cli):
    import os

    odd = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9")  # as Python gives such a name from argv
    (tmp_path / "okdbot.yaml").write_text(SOURCE, encoding="utf-8")
    for overrides in ({"index": odd}, {"corpus": odd}, {"env": {"OKDBOT_DATA": odd}}):
        with pytest.raises(ConfigError, match="not UTF-8"):
            load_settings(tmp_path / "okdbot.yaml", **{"env": {}, **overrides})
    os.mkdir(odd)
    proc = okdbot_cli("init", odd, "--config", str(tmp_path / "new.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "new.yaml").exists()


def test_an_empty_model_name_is_a_config_error_with_its_line(tmp_path):
    with pytest.raises(ConfigError, match=r"okdbot.yaml:6: 'model.name' is empty"):
        _load(tmp_path, SOURCE + "model:\n  name: ''\n")


@pytest.mark.parametrize("key", ["index", "data"])
def test_an_empty_index_or_state_folder_is_refused_not_taken_as_the_configs_folder(tmp_path, key):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, SOURCE + f"{key}: \"\"\n")
    assert "okdbot.yaml:5" in str(err.value) and f"'{key}' is empty" in str(err.value), str(err.value)


@pytest.mark.parametrize("args", [["query", "--index", "", "Skopeo"], ["index", "--corpus", ""],
                                  ["query", "--config", "", "Skopeo"], ["doctor", "--index="]])
def test_an_empty_path_flag_is_a_usage_error_not_this_folder(tmp_path, args, okdbot_cli):
    proc = okdbot_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2 and "is empty" in proc.stderr, proc
    assert list(tmp_path.iterdir()) == []  # nothing written here


def test_a_pipe_given_as_a_yaml_file_is_refused_at_once(tmp_path):
    import os

    from okdbot.config import compose_yaml
    from okdbot.errors import EvalError

    os.mkfifo(tmp_path / "questions.yaml")  # nothing writes to it: reading would wait for ever
    with pytest.raises(EvalError, match="not a regular file"):
        compose_yaml(tmp_path / "questions.yaml", "question file", EvalError)


@pytest.mark.parametrize("url, needle", [
    ("https://gitlab.com/o/r/-/tree/main/docs?ref_type=heads", "query"),  # what GitLab offers to copy
    ("https://github.com/o/r/blob/main/docs/#readme", "#"),
    ("https://exa mple.com/docs/", "space"),
])
def test_a_source_url_a_path_cannot_follow_is_refused(tmp_path, url, needle):
    with pytest.raises(ConfigError, match=needle):
        _load(tmp_path, SOURCE.replace("https://github.com/o/r/blob/main/docs/", url))
    (tmp_path / "okdbot.yaml").write_text(SOURCE, encoding="utf-8")
    with pytest.raises(ConfigError, match="--source-url"):
        load_settings(tmp_path / "okdbot.yaml", corpus=tmp_path, source_url=url, env={})


def test_a_source_url_whose_query_takes_the_path_is_kept(tmp_path):
    source = _load(tmp_path, SOURCE.replace("https://github.com/o/r/blob/main/docs/",
                                            "https://git.example.org/view?file=")).sources[0]
    assert source.link_for("a.md", 1, 2).startswith("https://git.example.org/view?file=a.md")


@pytest.mark.parametrize("url", ["https://dev.azure.com/org/proj/_git/notes?path=/docs/", "https://site.example/#/"])
def test_a_source_url_whose_query_or_route_takes_the_path_is_kept(tmp_path, url):
    assert _load(tmp_path, SOURCE.replace("https://github.com/o/r/blob/main/docs/", url)).sources[0].url == url
