"""Config loading: valid files load, broken ones name file, line and key."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import (
    FeedSourceConfig,
    FolderSourceConfig,
    MaildirChannelConfig,
    load_config,
    parse_duration,
)
from monitor.errors import ConfigError

WATCHLISTS = """\
- name: pact
  query: GSOMIA
  channels: [box]
"""


def write(tmp_path: Path, text: str, watchlists: str = WATCHLISTS) -> Path:
    (tmp_path / "watchlists.yaml").write_text(watchlists)
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    return path


BASE = """\
database: sqlite:///var/db.sqlite
sources:
  - name: docs
    type: folder
    path: docs
    every: 30s
channels:
  box: {type: maildir, path: mail, to: [desk@example.org]}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        (45, timedelta(seconds=45)),
    ],
)
def test_durations_parse(text: str | int, expected: timedelta) -> None:
    assert expected == parse_duration(text)


@pytest.mark.parametrize("text", ["often", "10 minutes", "", "-5s", "1y"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_valid_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    source = config.monitor.sources[0]
    assert isinstance(source, FolderSourceConfig)
    assert tmp_path / "docs" == source.path
    assert timedelta(seconds=30) == source.every
    channel = config.monitor.channels["box"]
    assert isinstance(channel, MaildirChannelConfig)
    assert tmp_path / "mail" == channel.path
    assert f"sqlite:///{tmp_path}/var/db.sqlite" == config.monitor.database
    assert ["pact"] == [w.name for w in config.watchlists]


@pytest.mark.parametrize(
    ("replace", "by", "line", "message"),
    [
        ("every: 30s", "every: often", 6, "sources[0].every: not a duration: 'often'"),
        ("    every: 30s", "    every: 30s\n    colour: red", 7, "sources[0].colour: unknown key"),
        ("type: folder", "type: carrier-pigeon", 4, "sources[0].type: unknown type"),
        ("    path: docs\n", "", 3, "sources[0].path: required key is missing"),
        ("[desk@example.org]", "[nobody]", 8, "channels.box.to[0]"),
        ("database:", "databse:", 1, "databse: unknown key"),
    ],
)
def test_errors_name_file_line_and_key(
    tmp_path: Path, replace: str, by: str, line: int, message: str
) -> None:
    assert replace in BASE
    path = write(tmp_path, BASE.replace(replace, by))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) == caught.value.file
    assert line == caught.value.line
    assert message in caught.value.located()
    assert caught.value.located().startswith(f"{path}:{line}: ")


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "digests: [\n  {name: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line is not None
    assert caught.value.line >= 9
    assert "invalid YAML" in caught.value.message


@pytest.mark.parametrize("name", ["monitor.yaml", "watchlists.yaml"])
def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, BASE)
    (tmp_path / name).write_bytes(
        "# caf\u00e9\n".encode("latin-1") + (tmp_path / name).read_bytes()
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{tmp_path / name}:1: cannot read: not UTF-8 text" in caught.value.located()


def test_unknown_channel_in_a_watchlist_names_its_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE, WATCHLISTS + "- name: other\n  query: x\n  channels: [nope]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(tmp_path / "watchlists.yaml") == caught.value.file
    assert 4 == caught.value.line
    assert "unknown channel 'nope'" in caught.value.message


def test_environment_references_expand_and_missing_ones_fail(tmp_path: Path) -> None:
    text = BASE + "  hook: {type: webhook, url: 'http://127.0.0.1:9/h', secret: '${HOOK_SECRET}'}\n"
    config = load_config(write(tmp_path, text), env={"HOOK_SECRET": "whsec_abc"})
    assert ["whsec_abc", "http://127.0.0.1:9/h"] == config.secrets()  # a hook URL is one too
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    assert 9 == caught.value.line
    assert "HOOK_SECRET is not set" in caught.value.message


def test_environment_values_long_enough_for_a_token_are_secrets(tmp_path: Path) -> None:
    text = BASE.replace(
        "sources:",
        "sources:\n  - {name: wire, type: feed, every: '${EVERY}',"
        " url: 'http://127.0.0.1:${PORT}/${TOKEN}/rss'}",
        1,
    )
    env = {"PORT": "2525", "TOKEN": "48151623420815", "EVERY": "10m"}
    config = load_config(write(tmp_path, text), env=env)
    assert "48151623420815" in config.secrets()  # digits, but a token's length
    assert not {"2525", "10m"} & set(config.secrets())


def test_feed_source_defaults(tmp_path: Path) -> None:
    text = BASE + "  - {name: wire, type: feed, url: 'http://127.0.0.1:1/rss'}\n"
    text = text.replace("channels:\n", "").replace(
        "  box: {type: maildir, path: mail, to: [desk@example.org]}\n", ""
    )
    text += "channels:\n  box: {type: maildir, path: mail, to: [desk@example.org]}\n"
    source = load_config(write(tmp_path, text)).monitor.sources[1]
    assert isinstance(source, FeedSourceConfig)
    assert timedelta(minutes=10) == source.every
    assert 60.0 == source.jitter_seconds
    assert 10 * 1024 * 1024 == source.max_bytes


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    text = BASE.replace("channels:", "  - {name: docs, type: folder, path: x}\nchannels:")
    with pytest.raises(ConfigError, match="source 'docs' is defined twice"):
        load_config(write(tmp_path, text))


def test_a_term_set_defined_in_two_files_is_refused_at_its_second_line(tmp_path: Path) -> None:
    # Term sets from monitor.yaml and every watch-list file share one set of names.
    text = BASE + "terms:\n  korea: [Korea]\n"
    watchlists = (
        "terms:\n  japan: [Japan]\n  korea: [Seoul]\nwatchlists:\n  - {name: a, query: x}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text, watchlists))
    assert "term set 'korea' is defined twice" == caught.value.message
    assert (str(tmp_path / "watchlists.yaml"), 3) == (caught.value.file, caught.value.line)


def test_a_query_error_names_the_line_of_the_query_and_of_its_mistake(tmp_path: Path) -> None:
    from monitor.app import build_matcher

    watchlists = (
        "- name: one\n"
        "  description: on one line\n"
        "  query: GSOMIA AND (Japan\n"
        "- name: block\n"
        "  channels: [box]\n"
        "  query: |\n"
        "    GSOMIA\n"
        "    AND NEAR(a b\n"
    )
    path = write(tmp_path, BASE, watchlists)
    with pytest.raises(ConfigError) as caught:
        build_matcher(load_config(path))
    assert caught.value.located().startswith(f"{tmp_path / 'watchlists.yaml'}:3: watch-list 'one'")
    path = write(tmp_path, BASE, watchlists.replace("(Japan", "Japan"))
    with pytest.raises(ConfigError) as caught:
        build_matcher(load_config(path))
    assert caught.value.located().startswith(
        f"{tmp_path / 'watchlists.yaml'}:8: watch-list 'block'"
    )


def test_a_missing_templates_folder_or_ca_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "templates: my-templates\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:9: templates: no such folder {tmp_path / 'my-templates'}" == (
        caught.value.located()
    )
    (tmp_path / "my-templates").mkdir()
    assert tmp_path / "my-templates" == load_config(path).monitor.templates
    smtp = "  desk: {type: smtp, host: localhost, ca_file: ca.pem, to: [desk@example.org]}\n"
    path = write(tmp_path, BASE + smtp)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f"{path}:9: channels.desk.ca_file: no such file {tmp_path / 'ca.pem'}" == (
        caught.value.located()
    )
    (tmp_path / "ca.pem").write_text("")
    load_config(path)


DIGEST_WATCHLISTS = """\
- {name: pact, query: GSOMIA, channels: [box]}
- {name: talks, query: SCM, alert: both, channels: [box]}
- {name: costs, query: '"cost sharing"', alert: digest}
"""


def test_a_digest_without_a_list_collects_the_watchlists_that_ask_for_digests(
    tmp_path: Path,
) -> None:
    digests = """\
digests:
  - {name: all, schedule: "0 7 * * *", channels: [box]}
  - {name: named, schedule: "0 7 * * *", channels: [box], watchlists: [pact]}
watchlists: watchlists.yaml
"""
    config = load_config(write(tmp_path, BASE + digests, DIGEST_WATCHLISTS))
    collected = {d.name: config.covered_by(d) for d in config.monitor.digests}
    # alert: instant (the default) keeps a watch-list out, unless a digest names it
    assert {"all": ["talks", "costs"], "named": ["pact"]} == collected


def test_a_digest_that_would_collect_nothing_is_refused_at_its_line(tmp_path: Path) -> None:
    digests = """\
watchlists: watchlists.yaml
digests:
  - {name: morning, schedule: "0 7 * * *", channels: [box]}
"""
    path = write(tmp_path, BASE + digests)  # the one watch-list alerts instantly only
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (str(path), 11) == (caught.value.file, caught.value.line)
    assert "digest 'morning' would collect no watch-list" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgres://monitor:hunter2@db/news", "'postgres' is not supported"),
        ("mysql://monitor:hunter2@db/news", "'mysql' is not supported"),
        ("postgresql+psycopg2://monitor:hunter2@db/news", "postgresql+psycopg2 is not supported"),
        ("hunter2", "not a database URL"),
    ],
)
def test_a_database_the_store_cannot_open_is_refused_at_load(
    tmp_path: Path, url: str, said: str
) -> None:
    path = write(tmp_path, f"database: '{url}'\nsources: []\nwatchlists: []\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (str(path), 1) == (caught.value.file, caught.value.line)
    assert said in str(caught.value)
    assert "postgresql+psycopg://USER" in str(caught.value)  # the form that works
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("schedule", "said"),
    [
        ("0 7 * *", "5 fields (minute hour day month weekday), not 4"),
        ("0 7 * * * *", "5 fields (minute hour day month weekday), not 6"),
        ("0 25 * * *", "not a cron schedule '0 25 * * *'"),
    ],
)
def test_a_digest_schedule_that_is_not_cron_is_refused_at_its_line(
    tmp_path: Path, schedule: str, said: str
) -> None:
    digests = f"watchlists: watchlists.yaml\ndigests:\n  - name: m\n    schedule: '{schedule}'\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, BASE + digests + "    channels: [box]\n"))
    assert (12, "digests[0].schedule") == (caught.value.line, str(caught.value).split(": ")[1])
    assert said in str(caught.value)


def refused_at(tmp_path: Path, added: str, line: int) -> ConfigError:
    """The error loading BASE plus ``added`` gives, checked to be at the config file's
    ``line`` of what was added."""
    path = write(tmp_path, BASE + added)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (str(path), BASE.count("\n") + line) == (caught.value.file, caught.value.line)
    return caught.value


@pytest.mark.parametrize(
    ("added", "line", "message"),
    [
        ("retention: !days 7\n", 1, "retention: invalid YAML: could not determine a constructor"),
        ("retention: !!int seven\n", 1, "retention: not a valid !!int"),
        ("? [a, b]\n: 1\n", 1, "a key must be a plain value"),
        ("terms: &loop\n  x: [*loop]\n", 2, "terms.x[0]: an alias refers to itself"),
    ],
)
def test_a_value_yaml_cannot_build_is_a_config_error_at_its_line(
    tmp_path: Path, added: str, line: int, message: str
) -> None:
    """Not a traceback (exit 1), and on a reload not the daemon's end."""
    assert message in refused_at(tmp_path, added, line).message


def test_a_mistake_in_an_inline_watchlist_is_the_first_problem_named(tmp_path: Path) -> None:
    """Not "watchlists.str: Input should be a valid string" at the ``watchlists:`` line: an
    inline list is not a file name that went wrong."""
    inline = "watchlists:\n  - name: pact\n    query: GSOMIA\n    alert: sometimes\n"
    path = write(tmp_path, BASE + inline)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert BASE.count("\n") + 4 == caught.value.line
    assert caught.value.located().startswith(f"{path}:{caught.value.line}: watchlists[0].alert: ")
    assert "valid string" not in caught.value.message


def test_a_watchlists_value_that_is_neither_a_file_nor_a_list_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "watchlists: {name: pact}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert BASE.count("\n") + 1 == caught.value.line
    assert "watchlists: " in caught.value.message


@pytest.mark.parametrize(
    ("added", "line", "key"),
    [
        ("~: 3\n", 1, "None"),
        ("2019-11-22: 3\n", 1, "2019-11-22"),
        ("terms:\n  korea: [Korea]\n  ~: [Seoul]\n", 3, "terms.None"),
        ("  1.5: {type: console}\n", 1, "channels.1.5"),  # BASE ends inside channels
    ],
)
def test_a_key_that_is_not_a_string_is_refused_at_its_own_line(
    tmp_path: Path, added: str, line: int, key: str
) -> None:
    """Pydantic names such a key by its repr (``'None'``), not the key YAML built (None)."""
    assert refused_at(tmp_path, added, line).message.startswith(key)


def test_a_watchlists_glob_that_matches_no_file_is_refused_at_its_line(tmp_path: Path) -> None:
    """As a file name that names no file is: a daemon with no watch-list alerts on nothing,
    and a typo in the folder (``watchlist/*.yaml``) should not pass `monitor check`."""
    (tmp_path / "lists").mkdir()
    path = write(tmp_path, BASE + "watchlists: lists/*.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (str(path), BASE.count("\n") + 1) == (caught.value.file, caught.value.line)
    assert f"watchlists: no file matches {tmp_path / 'lists' / '*.yaml'}" == caught.value.message
    (tmp_path / "lists" / "desk.yaml").write_text(WATCHLISTS)
    assert ["pact"] == [w.name for w in load_config(path).watchlists]


@pytest.mark.parametrize("value", ["99999999999999d", "99999999999999999999"])
def test_a_duration_too_long_for_any_clock_is_a_config_error_not_a_traceback(
    tmp_path: Path, value: str
) -> None:
    path = write(tmp_path, BASE + f"retention: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "retention: too long a duration" in caught.value.located()
    assert caught.value.line == BASE.count("\n") + 1


@pytest.mark.parametrize(
    ("watchlists", "message"),
    [
        (
            "- name: p\n  query: x\n  examples: [a story]\n",
            "watchlists[0].examples: expected a mapping (key: value), not a list",
        ),
        (
            "- name: p\n  query: x\n  examples: {match: a story}\n",
            "watchlists[0].examples.match: expected a list ([a, b], or lines starting with "
            "'- '), not a string",
        ),
        (
            "- name: 'bad name!'\n  query: x\n",
            "watchlists[0].name: not a name: letters, digits, '.', '_' and '-', starting "
            "with a letter or digit",
        ),
        (
            "- name: p\n  query: x\n  examples: {match: [a story, {}]}\n",
            "watchlists[0].examples.match[1]: an example needs a title, a body or a source",
        ),
        (
            "- name: p\n  query: x\n  examples: {no_match: [42]}\n",
            "watchlists[0].examples.no_match[0]: expected a text, or a mapping with title, "
            "body or source",
        ),
    ],
    ids=["examples-a-list", "match-a-string", "name", "example-empty", "example-a-number"],
)
def test_a_value_of_the_wrong_kind_is_named_in_yamls_words(
    tmp_path: Path, watchlists: str, message: str
) -> None:
    """Not pydantic's "a valid dictionary or instance of ExamplesConfig" (a class name) or
    "should match pattern '^[A-Za-z0-9]...'"."""
    path = write(tmp_path, BASE, watchlists)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message == caught.value.message


def test_a_channels_own_check_is_named_at_the_channel_not_at_its_type(tmp_path: Path) -> None:
    """Not "channels.desk.smtp: ...": pydantic puts the channel's type into the error's
    path, which is no key of the file."""
    desk = "  desk: {type: smtp, host: h, to: [a@example.org], starttls: true, tls: true}\n"
    path = write(tmp_path, BASE + desk)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "channels.desk: choose starttls or tls (implicit TLS), not both" == (
        caught.value.message
    )
    assert BASE.count("\n") + 1 == caught.value.line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Authorization", "Bearer s\u00ebcret-token"),
        ("Authorization", "Bearer secret-token\r\nX-Desk: seoul"),
        ("X-Api-Key", "secret-token "),
        ("X Api Key", "secret-token"),
    ],
    ids=["not-ascii", "line-break", "trailing-space", "bad-name"],
)
def test_a_feed_header_no_request_can_carry_is_refused_without_its_value(
    tmp_path: Path, name: str, value: str
) -> None:
    """Accepted, it failed every poll, and the error httpx raised, logged and shown by
    `monitor status`, quoted the value: often a token."""
    feed = (
        "  - {name: wire, type: feed, url: 'http://news.test/rss',"
        f" headers: {{{json.dumps(name)}: {json.dumps(value)}}}}}\n"
    )
    path = write(tmp_path, BASE.replace("channels:\n", feed + "channels:\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (str(path), 7) == (caught.value.file, caught.value.line)
    assert "sources[1].headers" in caught.value.located()
    assert "secret" not in caught.value.located()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://news.test/r\tss", "non-printable"),
        ("http://xn--ls8h.test/rss", "not allowed"),  # punycode for no valid name
        ("http://" + "a" * 64 + ".test/rss", "too long"),  # a label has 63 at most
    ],
    ids=["tab", "bad-punycode", "long-label"],
)
def test_a_feed_url_no_request_can_be_made_to_is_refused_at_its_line(
    tmp_path: Path, url: str, said: str
) -> None:
    """Accepted, every poll of it crashed (`source_crashed`, a traceback in the log)."""
    feed = f"  - {{name: wire, type: feed, url: {json.dumps(url)}}}\n"
    path = write(tmp_path, BASE.replace("channels:\n", feed + "channels:\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (str(path), 7) == (caught.value.file, caught.value.line)
    assert "sources[1].url: not a URL: " in caught.value.located()
    assert said in caught.value.located()
