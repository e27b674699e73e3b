"""Shared by the consumer tests: the committed bundles, editable copies of them, and the Java check
of deepImageJ's reader (``jdll/JdllCast.java``, compiled with ``javac`` against Debian's SnakeYAML).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[2]
# the committed suite; UNIFMIR_ZOO_DIR checks another folder of bundles (a suite built elsewhere)
ZOO = Path(os.environ.get("UNIFMIR_ZOO_DIR") or ROOT / "zoo_models")
JDLL_SOURCE = Path(__file__).with_name("jdll") / "JdllCast.java"
# Debian's libyaml-snake-java (.ci/run installs it); SNAKEYAML_JAR overrides
SNAKEYAML_JARS = (Path("/usr/share/java/snakeyaml.jar"),)
JDLL_OK = "deepImageJ/JDLL 0.6.1: rdf read without a cast error"


def committed_bundles() -> list[Path]:
    """Every committed bundle: ``zoo_models/*/rdf.yaml`` and ``zoo_models/*.zip``."""
    return sorted(ZOO.glob("*/rdf.yaml")) + sorted(ZOO.glob("*.zip"))


def one_form_each(bundles: list[Path]) -> list[Path]:
    """Each bundle once: its folder's rdf.yaml, or its zip where it has no folder."""
    folders = {b.parent.name for b in bundles if b.suffix != ".zip"}
    return [b for b in bundles if b.suffix != ".zip" or b.stem not in folders]


def bundle_id(path: Path) -> str:
    return path.name if path.suffix == ".zip" else path.parent.name


def read_rdf(bundle: Path) -> dict[str, Any]:
    """The parsed rdf.yaml of a bundle folder's ``rdf.yaml`` or of a zip."""
    if bundle.suffix == ".zip":
        with zipfile.ZipFile(bundle) as z:
            return yaml.safe_load(z.read("rdf.yaml"))
    return yaml.safe_load(bundle.read_text(encoding="utf-8"))


def unpack(bundle: Path, dest: Path) -> Path:
    """A copy of the bundle as a folder under ``dest``; returns its rdf.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    if bundle.suffix == ".zip":
        with zipfile.ZipFile(bundle) as z:
            z.extractall(dest)
    else:
        shutil.copytree(bundle.parent, dest, dirs_exist_ok=True)
    return dest / "rdf.yaml"


def consumer_ready(rdf: dict[str, Any], nickname: str = "unifmir-model") -> dict[str, Any]:
    """The rdf with the fields every consumer reads in the form they read (no-op on a bundle that
    already has them): plain-path ``documentation``/``covers``, ``format_version`` 0.5.10, and a
    model id for JDLL (``config.bioimageio.nickname``). The base of the broken-bundle tests, so that
    each of them breaks exactly one thing."""
    out = dict(rdf)
    if isinstance(out.get("documentation"), dict):
        out["documentation"] = out["documentation"]["source"]
    if isinstance(out.get("covers"), list):
        out["covers"] = [c["source"] if isinstance(c, dict) else c for c in out["covers"]]
    out["format_version"] = "0.5.10"
    config = dict(out.get("config") or {})
    bio = dict(config.get("bioimageio") or {})
    if out.get("id") is None and bio.get("nickname") is None:
        bio["nickname"] = nickname
    config["bioimageio"] = bio
    out["config"] = config
    return out


def edited_copy(bundle: Path, dest: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A consumer-ready copy of ``bundle`` in ``dest`` with ``edit`` applied to its rdf; returns the
    copy's rdf.yaml."""
    rdf_path = unpack(bundle, dest)
    rdf = consumer_ready(read_rdf(rdf_path), nickname=bundle_id(bundle).removesuffix(".zip"))
    if edit is not None:
        edit(rdf)
    rdf_path.write_text(yaml.safe_dump(rdf, sort_keys=False), encoding="utf-8")
    return rdf_path


# ------------------------------------------------------------------------------ the Java check


class JavaUnavailableError(RuntimeError):
    pass


def snakeyaml_jar() -> Path:
    env = os.environ.get("SNAKEYAML_JAR")
    for jar in ([Path(env)] if env else []) + list(SNAKEYAML_JARS):
        if jar.is_file():
            return jar
    raise JavaUnavailableError(
        "deepImageJ check: SnakeYAML not found at /usr/share/java/snakeyaml.jar; install it with "
        "`apt-get install libyaml-snake-java` (.ci/run does) or set SNAKEYAML_JAR"
    )


def compile_jdll_check(out_dir: Path) -> Path:
    """Compiles ``JdllCast.java`` into ``out_dir``; returns the class path for :func:`run_jdll_check`."""
    jar = snakeyaml_jar()
    javac = shutil.which("javac")
    if javac is None:
        raise JavaUnavailableError("deepImageJ check: no `javac` on PATH; install a JDK (openjdk-17-jdk-headless)")
    res = subprocess.run([javac, "-nowarn", "-d", str(out_dir), "-cp", str(jar), str(JDLL_SOURCE)],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise JavaUnavailableError(f"deepImageJ check: javac failed:\n{res.stdout}{res.stderr}")
    return out_dir


def run_jdll_check(classes: Path, rdf_path: Path) -> tuple[int, str]:
    """``(exit code, the program's line)`` of the Java check on ``rdf_path``."""
    java = shutil.which("java") or "java"
    cp = f"{snakeyaml_jar()}:{classes}"
    res = subprocess.run([java, "-cp", cp, "JdllCast", str(rdf_path)], capture_output=True, text=True, timeout=300)
    return res.returncode, (res.stdout.strip() or res.stderr.strip())
