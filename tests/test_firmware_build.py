"""firmware/build, exercised without building an image (issue 13, items 8 and 9).

The build runs in a sandbox: a PATH holding only basic commands and stand-ins for the tools it
checks for, its work and output folders and the binfmt_misc folder it looks at in tmp_path. It
must name every missing tool at once before starting, and stop at the first failed step with one
line saying what to do. Its login lockdown (`lock_logins`, `ssh_access`) runs on a scratch copy
of what a Raspberry Pi OS Lite root holds, with the host's shadow tools (--prefix).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "firmware" / "build"
SMOKE_TEST = REPO / "firmware" / "smoke-test"
BASICS = ("bash", "env", "sed", "xargs", "date", "mkdir", "rm", "mv", "cp", "cat", "tail",
          "head", "ls", "sort", "grep", "id", "dirname", "basename", "chmod", "cut", "du",
          "find", "touch", "ln", "awk", "stat", "sleep", "mktemp", "wc", "readlink", "tr", "od",
          "tar", "uname", "printf", "echo", "true", "false")


def _tool_packages(script: Path = BUILD) -> dict[str, str]:
    block = re.search(r"declare -A TOOL_PACKAGE=\((.*?)\n\)", script.read_text(), re.DOTALL)
    assert block, "firmware/build names the package of every tool it needs"
    return dict(re.findall(r"\[([\w.+-]+)\]=([\w.+-]+)", block.group(1)))


def _root_prefix() -> list[str]:
    """How to run the build as root here: directly, or in a user namespace; else skip."""
    if os.geteuid() == 0:
        return []
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-r", "true"], capture_output=True).returncode == 0:
        return [unshare, "-r"]
    pytest.skip("needs root or unprivileged user namespaces (unshare -r)")


class Sandbox:
    """A PATH of basic commands plus stand-ins; work, output and binfmt folders in tmp."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name in BASICS:
            if found := shutil.which(name):
                (self.bin / name).symlink_to(found)
        for tool in _tool_packages():
            if not (self.bin / tool).exists():
                self.stub(tool, "exit 0")
        self.binfmt = tmp / "binfmt"
        self.binfmt.mkdir()
        (self.binfmt / "qemu-aarch64").write_text(
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
        self.work, self.out = tmp / "work", tmp / "out"

    def stub(self, name: str, body: str) -> None:
        path = self.bin / name
        path.unlink(missing_ok=True)
        path.write_text(f"#!{shutil.which('bash')}\n{body}\n")
        path.chmod(0o755)

    def remove(self, *names: str) -> None:
        for name in names:
            (self.bin / name).unlink()

    def run(self, *args: str, as_root: bool = True) -> subprocess.CompletedProcess:
        env = {"PATH": str(self.bin), "HOME": str(self.tmp), "LANG": "C.UTF-8",
               "SOSIE_BUILD_WORK": str(self.work), "SOSIE_BUILD_OUT": str(self.out),
               "SOSIE_BINFMT_DIR": str(self.binfmt), "SOSIE_HOST_PYTHON": sys.executable}
        command = [*(_root_prefix() if as_root else []), str(BUILD), *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def _lines(stderr: str, prefix: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


# ---------------------------------------------------------------------------------------------
# item 9: every tool checked at once, the first failed step stops the build


def test_check_names_every_missing_tool_at_once(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.remove("mkfs.vfat", "mcopy", "aarch64-linux-gnu-gcc", "mmdebstrap", "debugfs")
    result = box.run("--check", "--data-size", "lots", as_root=False)
    assert result.returncode == 1
    (line,) = _lines(result.stderr, "firmware/build:")
    assert result.stderr.strip() == line  # nothing else: one line
    missing = re.search(r"missing ([^:;]+): apt-get install ([^;]+)", line)
    assert missing, line
    assert set(missing.group(1).split()) == {"mkfs.vfat", "mcopy", "aarch64-linux-gnu-gcc",
                                             "mmdebstrap", "debugfs"}
    assert set(missing.group(2).split()) == {"dosfstools", "mtools", "gcc-aarch64-linux-gnu",
                                             "mmdebstrap", "e2fsprogs"}
    assert "--data-size lots" in line  # other problems on the same line
    assert not box.work.exists() and not box.out.exists()  # a check writes nothing


def test_check_refuses_a_corpus_larger_than_the_data_partition(tmp_path: Path) -> None:
    """A 200k-face corpus (1.75 GB) does not fit the default 1G data partition: --check says
    how much it needs and which --data-size gives it, before anything is built."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with open(corpus / "thumbs.pack", "wb") as fh:  # sparse: 100 MiB apparent, no disk used
        fh.truncate(100 << 20)
    box = Sandbox(tmp_path)
    small = box.run("--check", "--corpus", str(corpus), "--data-size", "128M", as_root=False)
    (line,) = _lines(small.stderr, "firmware/build:")
    assert small.returncode == 1
    need = re.search(rf"--corpus {re.escape(str(corpus))}: needs (\d+) MiB", line)
    assert need and 164 <= int(need.group(1)) <= 166, line  # 100 MiB + 64 (du rounds up)
    assert "gives 128 MiB" in line, line
    assert "use --data-size 1G" in line, line
    roomy = box.run("--check", "--corpus", str(corpus), "--data-size", "1G", as_root=False)
    assert "--corpus" not in roomy.stderr, roomy.stderr


def test_check_asks_for_arch_test_where_mmdebstrap_makes_a_foreign_base(tmp_path: Path) -> None:
    """mmdebstrap --arch=arm64 on another architecture stops without arch-test ("install
    arch-test for foreign architecture support"): --check names it, on an arm64 host it does
    not, nor once the base is made (no mmdebstrap run)."""
    box = Sandbox(tmp_path)
    box.remove("arch-test")
    box.stub("uname", 'echo x86_64')
    line = _lines(box.run("--check", as_root=False).stderr, "firmware/build:")[0]
    missing = re.search(r"missing ([^:;]+): apt-get install ([^;]+)", line)
    assert missing and missing.group(1).split() == ["arch-test"], line
    assert missing.group(2).split() == ["arch-test"]
    box.stub("uname", 'echo aarch64')
    assert "arch-test" not in box.run("--check", as_root=False).stderr
    box.stub("uname", 'echo x86_64')
    box.work.mkdir()
    (box.work / "base-debian-arm64.tar").write_bytes(b"")  # the base was made before
    assert "arch-test" not in box.run("--check", as_root=False).stderr


@pytest.mark.parametrize(("script", "args"), [
    (BUILD, ["--check", "--name"]), (BUILD, ["--ssh-key", "--check"]),
    (SMOKE_TEST, ["--hold"]), (SMOKE_TEST, ["--image", "--no-corpus"])])
def test_an_option_without_its_value_is_one_line(tmp_path: Path, script: Path,
                                                  args: list[str]) -> None:
    """`--name` at the end, or followed by another option, names the option on one line (was
    bash's "$2: unbound variable", or the next option taken as the value)."""
    result = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=30,
                            cwd=tmp_path)
    assert result.returncode != 0
    option = next(a for a in args if a in ("--name", "--ssh-key", "--hold", "--image"))
    assert result.stderr.strip() == (
        f"firmware/{script.name}: {option} expects a value (see --help)"), result.stderr


def test_check_passes_when_everything_is_there(tmp_path: Path) -> None:
    result = Sandbox(tmp_path).run("--check", "--compress", "none")
    assert result.returncode == 0, result.stderr
    assert "ready to build" in result.stderr


def test_build_refuses_to_start_where_arm64_programs_cannot_run(tmp_path: Path) -> None:
    """The issue's machine: binfmt_misc not set up. Named before anything starts."""
    box = Sandbox(tmp_path)
    (box.binfmt / "qemu-aarch64").unlink()
    result = box.run("--compress", "none")
    assert result.returncode == 1
    (line,) = _lines(result.stderr, "firmware/build:")
    assert "arm64 programs cannot run here" in line and "update-binfmts" in line
    assert "making the Debian" not in result.stderr and not box.out.exists()


def test_build_stops_at_the_first_failed_step_with_one_line(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.stub("mmdebstrap", "echo 'E: cannot execute arm64 binaries' >&2; exit 1")
    result = box.run("--compress", "none")
    assert result.returncode == 1
    (line,) = _lines(result.stderr, "firmware/build:")
    assert line.startswith('firmware/build: FAILED at "making the Debian bookworm arm64 base')
    assert "'mmdebstrap" in line and "status 1" in line and "binfmt" in line
    assert "done in" not in result.stderr  # the old build said "done in 1 s" and went on
    assert "unpacking" not in result.stderr and "system setup" not in result.stderr
    assert not list(box.out.glob("*.img*"))


def test_a_failure_deep_in_a_later_step_stops_there(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    # A base that unpacks, then a chroot that cannot run the image's programs.
    box.stub("mmdebstrap", 'mkdir -p "$HOME/base/usr/bin"; tar -C "$HOME/base" -cf "${@: -2:1}" .')
    box.stub("chroot", "echo \"chroot: failed to run command '/usr/bin/env': "
                       "Exec format error\" >&2; exit 126")
    result = box.run("--compress", "none")
    assert result.returncode == 1
    (line,) = _lines(result.stderr, "firmware/build:")
    assert line.startswith('firmware/build: FAILED at "system setup'), line
    assert re.search(r"'.+' exited with status [1-9]", line)  # the command that failed
    assert result.stderr.count("done in") == 2  # making and unpacking the base, nothing after
    assert "Python environment" not in result.stderr


def test_smoke_test_checks_its_tools_and_the_builds_at_once(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    box.remove("mkfs.vfat")
    firmware = tmp_path / "firmware"  # a copy, so that out/ and work/ are the sandbox's
    firmware.mkdir()
    for name in ("build", "smoke-test", "sosie.yaml"):
        shutil.copy2(REPO / "firmware" / name, firmware / name)
    for folder in ("packages", "smoke"):
        shutil.copytree(REPO / "firmware" / folder, firmware / folder)
    env = {"PATH": str(box.bin), "HOME": str(tmp_path), "SOSIE_BINFMT_DIR": str(box.binfmt),
           "SOSIE_HOST_PYTHON": sys.executable}
    result = subprocess.run([str(firmware / "smoke-test")], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    (line,) = _lines(result.stderr, "firmware/smoke-test:")
    assert result.stderr.strip() == line
    for tool in ("fdtput", "fdtget", "dtc", "device-tree-compiler", "mkfs.vfat", "dosfstools"):
        assert tool in line, line


# ---------------------------------------------------------------------------------------------
# item 8: no login on the image; SSH by key only


def _pi_os_root(tmp: Path) -> tuple[Path, Path]:
    """What Raspberry Pi OS Lite's root and boot partitions hold about logins."""
    root, boot = tmp / "root", tmp / "boot"
    for folder in ("etc/sudoers.d", "home/pi", "etc/ssh", "usr/lib/systemd/system",
                   "etc/cloud"):
        (root / folder).mkdir(parents=True)
    boot.mkdir()
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "pi:x:1000:1000:,,,:/home/pi:/bin/bash\n"
        "guest:x:1001:1001::/home/guest:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    (root / "etc/shadow").write_text(
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
        "pi:$6$salt$hash:19000:0:99999:7:::\nguest:$6$salt$hash:19000:0:99999:7:::\n"
        "nobody:*:19000:0:99999:7:::\n")
    (root / "etc/group").write_text("root:x:0:\nsudo:x:27:pi\ngpio:x:997:pi\npi:x:1000:\n"
                                    "guest:x:1001:\nnogroup:x:65534:\n")
    (root / "etc/gshadow").write_text("root:*::\nsudo:*::pi\ngpio:!::pi\npi:!::\nguest:!::\n"
                                      "nogroup:*::\n")
    (root / "etc/sudoers.d/010_pi-nopasswd").write_text("pi ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc/sudoers.d/README").write_text("# files here are read by sudo\n")
    (root / "home/pi/.bashrc").write_text("\n")
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("shared key of the published image\n")
    (root / "usr/lib/systemd/system/ssh.service").write_text(
        "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n"
        "[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n")
    for switch in ("ssh", "userconf.txt", "firstrun.sh", "config.txt"):
        (boot / switch).write_text("\n")
    return root, boot


def _lockdown(root: Path, boot: Path, key: Path | None = None) -> None:
    for tool in ("usermod", "userdel", "groupdel", "systemctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    script = (f'set -Eeuo pipefail; source "{BUILD}"; lock_logins "{root}" "{boot}"; '
              f'ssh_access "{root}" "{key or ""}"')
    result = subprocess.run([*_root_prefix(), "bash", "-c", script], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _table(path: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines()}


def test_no_login_by_default(tmp_path: Path) -> None:
    root, boot = _pi_os_root(tmp_path)
    _lockdown(root, boot)
    passwd, shadow = _table(root / "etc/passwd"), _table(root / "etc/shadow")
    assert "pi" not in passwd and "pi" not in _table(root / "etc/group")
    assert not (root / "home/pi").exists()
    assert "pi" not in _table(root / "etc/group")["sudo"][3].split(",")
    assert passwd["guest"][6] == "/usr/sbin/nologin" and shadow["guest"][1].startswith("!")
    assert shadow["root"][1].startswith("!")
    assert not (root / "etc/sudoers.d/010_pi-nopasswd").exists()
    assert (root / "etc/sudoers.d/README").exists()
    assert sorted(p.name for p in boot.iterdir()) == ["config.txt"]  # switches gone
    masked = root / "etc/systemd/system"
    for unit in ("ssh.service", "userconfig.service", "sshswitch.service",
                 "regenerate_ssh_host_keys.service", "cloud-init.service"):
        assert os.readlink(masked / unit) == "/dev/null", unit
    assert (root / "etc/cloud/cloud-init.disabled").exists()
    assert not list((root / "etc/ssh").glob("ssh_host_*"))


def test_ssh_by_key_only_when_a_key_is_given(tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "installer@laptop",
                    "-f", str(key_dir / "id")], check=True, timeout=60)
    public = key_dir / "id.pub"
    root, boot = _pi_os_root(tmp_path)
    _lockdown(root, boot, public)
    passwd, shadow = _table(root / "etc/passwd"), _table(root / "etc/shadow")
    admin = passwd["sosie-admin"]
    assert shadow["sosie-admin"][1].startswith("!")  # no password: the key is the only way
    home = root / admin[5].lstrip("/")
    keys = home / ".ssh" / "authorized_keys"
    assert keys.read_text() == public.read_text()
    assert keys.stat().st_mode & 0o777 == 0o600 and str(keys.stat().st_uid) == admin[2]
    config = (root / "etc/ssh/sshd_config.d/sosie.conf").read_text()
    for setting in ("PasswordAuthentication no", "KbdInteractiveAuthentication no",
                    "PermitRootLogin no", "AuthenticationMethods publickey",
                    "AllowUsers sosie-admin"):
        assert setting in config.splitlines()
    wanted = root / "etc/systemd/system/multi-user.target.wants/ssh.service"
    assert os.readlink(wanted).endswith("/ssh.service")  # enabled (a link into the image)
    assert list((root / "etc/ssh").glob("ssh_host_ed25519_key"))
    assert "shared key" not in (root / "etc/ssh/ssh_host_ed25519_key").read_text()
    assert "pi" not in passwd and shadow["root"][1].startswith("!")


def test_a_private_key_is_refused(tmp_path: Path) -> None:
    box = Sandbox(tmp_path)
    secret = tmp_path / "id_ed25519"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                      "-----END OPENSSH PRIVATE KEY-----\n")
    result = box.run("--check", "--ssh-key", str(secret), as_root=False)
    assert result.returncode == 1
    assert f"--ssh-key {secret}: expected a file of OpenSSH public keys" in result.stderr


def test_the_kernel_command_line_cannot_divert_the_boot() -> None:
    """Imager's `systemd.run=/boot/firstrun.sh systemd.unit=kernel-command-line.target`: no
    script from the boot partition runs, and that target is the normal boot."""
    etc = REPO / "firmware" / "rootfs" / "etc" / "systemd"
    assert os.readlink(etc / "system-generators" / "systemd-run-generator") == "/dev/null"
    target = (etc / "system" / "kernel-command-line.target").read_text()
    assert "Requires=multi-user.target" in target.splitlines()
    assert "ExecStart" not in target
