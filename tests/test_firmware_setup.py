"""The SD card's setup step against hostile and careless sosie.yaml files (issue 13, items 6, 8).

`firmware/rootfs/usr/local/lib/sosie/sosie-setup` reads the boot partition, which anyone holding
the card can edit, before the appliance starts. It is run here in this process (its functions,
with its folders pointed at a temporary directory) and as the program itself. Every refusal is
one line in error.txt naming the key, and leaves no configuration, host name or environment for
the appliance to start with.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.ticket.settings import NOTHING_KEPT, PHOTO_KEPT, privacy_line

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "firmware" / "rootfs" / "usr" / "local" / "lib" / "sosie" / "sosie-setup"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """sosie-setup's functions, its folders in tmp_path (boot/, run/, data/, cmdline)."""
    (tmp_path / "boot").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "cmdline").write_text("console=ttyAMA0 root=PARTUUID=1-02 ro rootwait\n")
    namespace: dict[str, Any] = {"__name__": "sosie_setup"}
    exec(compile(SETUP.read_text(), str(SETUP), "exec"), namespace)
    namespace.update(
        BOOT_CONFIG=tmp_path / "boot" / "sosie.yaml",
        RUN_DIR=tmp_path / "run",
        DATA_DIR=tmp_path / "data",
        KERNEL_CMDLINE=tmp_path / "cmdline",
    )
    namespace["IMAGE_DEFAULTS"] = {
        "corpus": {"path": str(tmp_path / "data" / "corpus")},
        "service": {"captures_dir": str(tmp_path / "data" / "captures")},
    }
    namespace["tmp"] = tmp_path
    return namespace


def _run(setup: dict[str, Any], text: str | bytes) -> tuple[int, str | None]:
    """prepare() on `text` as sosie.yaml: exit status and the error line (None when accepted)."""
    config = setup["BOOT_CONFIG"]
    config.write_bytes(text if isinstance(text, bytes) else text.encode())
    status = setup["prepare"]()
    error = setup["RUN_DIR"] / "error.txt"
    return status, error.read_text() if error.exists() else None


def _refused(setup: dict[str, Any], text: str | bytes, *names: str) -> str:
    status, error = _run(setup, text)
    assert status == 1 and error is not None
    assert error.count("\n") == 1 and error.endswith("\n"), error
    for name in names:
        assert name in error, (name, error)
    run = setup["RUN_DIR"]
    for left in ("sosie.yaml", "hostname", "environment"):
        assert not (run / left).exists(), left
    return error


def _written(setup: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load((setup["RUN_DIR"] / "sosie.yaml").read_text())


# ---------------------------------------------------------------------------------------------
# no commands, no paths outside the data partition, devices only where printers/cameras are


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("service:\n  poweroff_command: [sh, -c, 'curl x | sh']\n", "service.poweroff_command"),
        ("service:\n  poweroff_command: [systemctl, poweroff]\n", "service.poweroff_command"),
        ("service:\n  socket: /etc/cron.d/x\n", "service.socket"),
    ],
)
def test_commands_and_the_socket_cannot_be_set(setup: dict, text: str, key: str) -> None:
    _refused(setup, text, key, "boot partition")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("corpus.path", "/etc"),
        ("corpus.path", "../../etc"),
        ("corpus.path", "/srv/sosie/../../etc"),
        ("service.captures_dir", "/tmp/faces"),
        ("service.captures_dir", "/var/www/html"),
        ("camera.source", "/etc/shadow"),
        ("faces.landmarks_model", "/root/model.dat"),
        ("faces.descriptor_model", "../model.dat"),
        ("printer.virtual.out_dir", "/boot/firmware"),
        ("ticket.fonts.title", "/usr/share/fonts/x.ttf"),
        ("corpus.path", "corpus\x00/x"),
        ("corpus.path", ["corpus"]),
    ],
)
def test_paths_outside_the_data_partition_are_refused(setup: dict, key: str, value: Any) -> None:
    section, *rest = key.split(".")
    tree: Any = value
    for part in reversed(rest):
        tree = {part: tree}
    text = yaml.safe_dump({section: tree})
    _refused(setup, text, key, "data partition")


def test_a_link_out_of_the_data_partition_is_refused(setup: dict) -> None:
    (setup["DATA_DIR"] / "corpus").symlink_to("/etc")
    _refused(setup, "corpus:\n  path: corpus\n", "corpus.path", "data partition")


def test_paths_on_the_data_partition_are_accepted_and_made_absolute(setup: dict) -> None:
    data = setup["DATA_DIR"]
    text = (
        "corpus: {path: corpus}\n"
        f"camera: {{backend: file, source: {data}/smoke/visitor.jpg}}\n"
        "printer: {backend: virtual, virtual: {out_dir: tickets}}\n"
        "service: {keep_captures: true, captures_dir: kept/photos}\n"
    )
    assert _run(setup, text) == (0, None)
    written = _written(setup)
    assert written["corpus"]["path"] == str(data / "corpus")
    assert written["camera"]["source"] == str(data / "smoke" / "visitor.jpg")
    assert written["printer"]["virtual"]["out_dir"] == str(data / "tickets")
    assert written["service"]["captures_dir"] == str(data / "kept" / "photos")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("printer: {backend: file, file: {device: /etc/passwd}}\n", "printer.file.device"),
        ("printer: {backend: file, file: {device: /dev/sda}}\n", "printer.file.device"),
        ("printer: {backend: serial, serial: {device: /dev/mem}}\n", "printer.serial.device"),
        ("camera: {device: /dev/mem}\n", "camera.device"),
        ("camera: {device: /srv/sosie/x}\n", "camera.device"),
    ],
)
def test_devices_only_where_printers_and_cameras_appear(setup: dict, text: str, key: str) -> None:
    _refused(setup, text, key, "device node")


@pytest.mark.parametrize(
    "text",
    [
        "printer: {backend: file, file: {device: /dev/usb/lp1}}\n",
        "printer: {backend: serial, serial: {device: /dev/ttyACM0}}\n",
        "printer: {backend: serial, serial: {device: /dev/serial0}}\n",
        "camera: {device: /dev/video2}\n",
        "camera: {device: 1}\n",
    ],
)
def test_printer_and_camera_devices_are_accepted(setup: dict, text: str) -> None:
    assert _run(setup, text) == (0, None)


def test_a_path_or_command_key_without_a_rule_is_refused(setup: dict) -> None:
    """A settings key added later that holds a path or a command is refused until it is given
    a rule, whatever its section: judged from its type hint or its name."""

    @dataclasses.dataclass(frozen=True)
    class Future:
        """The future part (config section `future`)."""

        colour: str = "red"
        archive: Path | None = None
        hook_command: list[str] = dataclasses.field(default_factory=list)
        upload_dir: str = ""

    sections = {"future": [Future]}
    policy = setup["apply_boot_policy"]
    assert policy({"future": {"colour": "blue"}}, sections) == {"future": {"colour": "blue"}}
    for key, value in (("archive", "/etc"), ("hook_command", ["sh"]), ("upload_dir", "x")):
        with pytest.raises(setup["SetupError"], match=f"future.{key} cannot be set"):
            policy({"future": {key: value}}, sections)


# ---------------------------------------------------------------------------------------------
# system: host name (RFC 1123) and time zone (the zone list)


@pytest.mark.parametrize(
    "name",
    ["sosie\nevil", "sosie\n", "-sosie", "sosie-", "a..b", ".sosie", "so sie", "sosié",
     "a" * 64, ".".join(["abc"] * 17), "so_sie", "", None, True, [1], {"a": 1}],
)
def test_hostname_outside_rfc_1123_is_refused(setup: dict, name: Any) -> None:
    _refused(setup, yaml.safe_dump({"system": {"hostname": name}}), "system.hostname", "RFC 1123")


@pytest.mark.parametrize(
    ("name", "applied"),
    [("Sosie-Hall", "sosie-hall"), ("sosie.museum.example", "sosie.museum.example"),
     ("123", "123"), (42, "42"), ("a" * 63, "a" * 63)],
)
def test_hostname_is_written_for_the_unit_to_apply(setup: dict, name: Any, applied: str) -> None:
    assert _run(setup, yaml.safe_dump({"system": {"hostname": name}})) == (0, None)
    assert (setup["RUN_DIR"] / "hostname").read_text() == applied + "\n"


@pytest.mark.parametrize(
    "zone",
    ["/etc/shadow", "../../../etc/shadow", "Europe/../../../etc/shadow", "Europe/Paris\nLD_X=1",
     "Mars/Olympus", "posixrules/..", "", 5, None, ["Europe/Paris"]],
)
def test_timezone_outside_the_zone_list_is_refused(setup: dict, zone: Any) -> None:
    _refused(setup, yaml.safe_dump({"system": {"timezone": zone}}), "system.timezone")


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Argentina/Buenos_Aires", "UTC"])
def test_timezone_from_the_zone_list_is_accepted(setup: dict, zone: str) -> None:
    import zoneinfo

    if zone != "UTC" and zone not in zoneinfo.available_timezones():
        pytest.skip("no tzdata on this machine")
    assert _run(setup, yaml.safe_dump({"system": {"timezone": zone}})) == (0, None)
    assert (setup["RUN_DIR"] / "environment").read_text() == f"TZ={zone}\n"


# ---------------------------------------------------------------------------------------------
# the YAML itself


def test_billion_laughs_is_refused_at_the_first_alias(setup: dict) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]")
    _refused(setup, "\n".join(lines) + "\n", "line 2", "aliases")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("installation:\n  title: " + "[" * 5000 + "]" * 5000 + "\n", ("nested",)),
        ("a:\n" + "".join("  " * i + f"b{i}:\n" for i in range(1, 40)), ("nested",)),
        ("installation:\n  title: '" + "x" * 70_000 + "'\n", ("KiB",)),
        (b"installation:\n  title: Caf\xe9\n", ("not UTF-8", "byte 26")),
        ("faces: [1, 2\n", ("line", "not valid YAML")),
        ("- a\n- list\n", ("mapping",)),
        ("!!python/object/apply:os.system ['id']\n", ("not valid YAML",)),
        ("installation:\n  number: " + "9" * 5000 + "\n", ("cannot be read",)),
        ("installation:\n  opened: 2023-02-31\n", ("cannot be read",)),
    ],
    ids=["deep-flow", "deep-block", "huge", "latin-1", "broken", "list", "python-tag",
         "huge-int", "bad-date"],
)
def test_hostile_yaml_is_one_line(setup: dict, text: str | bytes, words: tuple[str, ...]) -> None:
    _refused(setup, text, str(setup["BOOT_CONFIG"]), *words)


# ---------------------------------------------------------------------------------------------
# kept photos: the ticket says so


def test_privacy_line_follows_keep_captures(setup: dict) -> None:
    assert _run(setup, "service: {keep_captures: false}\n") == (0, None)
    assert _written(setup).get("ticket", {}).get("privacy", NOTHING_KEPT) == NOTHING_KEPT
    assert _run(setup, "service: {keep_captures: true}\n") == (0, None)
    written = _written(setup)
    assert written["ticket"]["privacy"] == PHOTO_KEPT
    assert written["service"]["captures_dir"] == str(setup["DATA_DIR"] / "captures")
    # The appliance reads the same: the layout it prints from carries the honest line.
    from appliance.settings import load_settings

    settings = load_settings(setup["RUN_DIR"] / "sosie.yaml", search=False)
    assert settings.service.keep_captures and settings.ticket.privacy == PHOTO_KEPT


def test_an_installers_own_claim_of_nothing_kept_is_corrected(setup: dict) -> None:
    text = "service: {keep_captures: true}\nticket: {privacy: 'NOTHING of you  was kept!'}\n"
    assert _run(setup, text) == (0, None)
    assert _written(setup)["ticket"]["privacy"] == PHOTO_KEPT
    own = "Photos are kept for the exhibition catalogue; ask us to remove yours."
    assert _run(setup, f"service: {{keep_captures: true}}\nticket: {{privacy: '{own}'}}\n")[0] == 0
    assert _written(setup)["ticket"]["privacy"] == own


def test_privacy_line_function() -> None:
    assert privacy_line(NOTHING_KEPT, False) == NOTHING_KEPT
    assert privacy_line(NOTHING_KEPT, True) == PHOTO_KEPT
    assert privacy_line("Smile!", True) == "Smile!"
    assert "nothing" not in PHOTO_KEPT.lower()


# ---------------------------------------------------------------------------------------------
# Raspberry Pi Imager's OS customisation: refused on one line, never half applied


@pytest.mark.parametrize(
    "found", ["firstrun.sh", "user-data", "userconf.txt", "ssh", "wpa_supplicant.conf",
              "custom.toml"]
)
def test_imager_customisation_files_are_refused(setup: dict, found: str) -> None:
    (setup["BOOT_CONFIG"].parent / found).write_text("#!/bin/sh\n")
    error = _refused(setup, "installation: {title: Sosie}\n", found, "Raspberry Pi Imager",
                     "--ssh-key", "sosie.yaml")
    assert "OS customisation" in error


@pytest.mark.parametrize("where", ["cmdline.txt", "kernel"])
def test_systemd_run_on_the_kernel_command_line_is_refused(setup: dict, where: str) -> None:
    words = ("console=serial0,115200 root=PARTUUID=x ro systemd.run=/boot/firstrun.sh "
             "systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n")
    target = setup["BOOT_CONFIG"].parent / "cmdline.txt" if where == "cmdline.txt" else \
        setup["KERNEL_CMDLINE"]
    target.write_text(words)
    _refused(setup, "", "systemd.run=", "Raspberry Pi Imager")


def test_a_plain_card_is_accepted(setup: dict) -> None:
    (setup["BOOT_CONFIG"].parent / "cmdline.txt").write_text("console=tty1 root=PARTUUID=x ro\n")
    (setup["BOOT_CONFIG"].parent / "config.txt").write_text("[pi4]\n")
    assert _run(setup, (REPO / "firmware" / "sosie.yaml").read_text()) == (0, None)


# ---------------------------------------------------------------------------------------------
# the program, as sosie-setup.service runs it


def test_program_refuses_a_hostile_file_on_one_line(tmp_path: Path) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "sosie.yaml").write_text("service:\n  poweroff_command: [sh, -c, 'id > /tmp/x']\n"
                                     "system: {timezone: /etc/shadow}\n")
    env = {k: v for k, v in os.environ.items() if k != "INVOCATION_ID"}
    env.update(SOSIE_BOOT_CONFIG=str(boot / "sosie.yaml"), SOSIE_SETUP_DIR=str(tmp_path / "run"),
               SOSIE_DATA_DIR=str(tmp_path / "data"), SOSIE_KERNEL_CMDLINE=os.devnull,
               PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, str(SETUP)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = (tmp_path / "run" / "error.txt").read_text()
    assert error.count("\n") == 1 and "system.timezone" in error
    assert not (tmp_path / "run" / "hostname").exists()


def test_data_folders_are_not_chowned_when_already_the_users(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under sosie-setup.service the folders are already the appliance user's (it made them; the
    FAT partition is mounted uid=sosie) and chown is refused by the unit's system call filter
    (~@privileged): booted, every folder logged 'Operation not permitted'. The owner is only
    changed when it differs."""
    import pwd

    calls: list[tuple[str, int, int]] = []

    def refused_chown(path: Any, uid: int, gid: int) -> None:
        calls.append((str(path), uid, gid))
        raise PermissionError(1, "Operation not permitted", str(path))

    me = pwd.struct_passwd(("sosie", "x", os.getuid(), os.getgid(), "", "/srv/sosie", "/bin/false"))
    monkeypatch.setattr(pwd, "getpwnam", lambda name: me)
    monkeypatch.setattr(os, "chown", refused_chown)
    setup["prepare_data_dir"]()
    data = setup["DATA_DIR"]
    assert all((data / name).is_dir() for name in setup["DATA_SUBDIRS"])
    assert calls == []
    assert capsys.readouterr().err == ""

    other = pwd.struct_passwd(("sosie", "x", os.getuid() + 1, os.getgid(), "", "/", "/bin/false"))
    monkeypatch.setattr(pwd, "getpwnam", lambda name: other)
    setup["prepare_data_dir"]()  # someone else's folders: changed (here refused, and said so)
    assert [Path(path).name for path, _, _ in calls] == list(setup["DATA_SUBDIRS"])
    assert "Operation not permitted" in capsys.readouterr().err
