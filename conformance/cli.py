"""``shulian-conform``: prove that data, a catalog or a node conforms to the Shulian standard.

Exit codes: 0 every mandatory case passed; 1 a mandatory case did not pass (failed,
can't tell, or not run); 2 usage or input error; 3 the node was unavailable.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.table import Table

from conformance._model import Run
from conformance._node import NodeTarget
from node.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, InputError, ShulianError

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def _standard_option(f: F) -> F:
    return click.option(
        "--standard", "standard_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
        help="The standard to test against (default: the shipped one); e.g. one with the national division list.",
    )(f)


def _engine_option(f: F) -> F:
    return click.option("--engine", type=click.Choice(["shacl", "fast"]), default="shacl", show_default=True,
                        help="shacl: the reference engine (pySHACL); fast: the node's compiled validator.")(f)


def _report_options(f: F) -> F:
    for opt in reversed([
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("conformance-report"), show_default=True,
                     help="Folder for the reports: junit.xml, earl.ttl, summary.json (and shacl-report.ttl)."),
        click.option("--statement", "statement", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write a signed conformance statement (Turtle) here; needs --key."),
        click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="The operator's Ed25519 private key (PEM) that signs the statement (see keygen)."),
        click.option("--operator", default=None, help="Who ran the kit, named in the statement."),
        click.option("--verbose", "-v", is_flag=True, help="List every case, not only those that did not pass."),
        click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
                     help="Language of the case titles in the terminal."),
    ]):
        f = opt(f)
    return f


def _node_options(f: F) -> F:
    for opt in reversed([
        click.option("--target", default=None, metavar="HOST:PORT", help="The node under test (its gRPC address)."),
        click.option("--ca", "ca_cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
                     help="The federation CA certificate (PEM) the node's certificate must chain to."),
        click.option("--cert", "client_cert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     default=None, help="The kit's client certificate (PEM), issued by the federation CA."),
        click.option("--tls-key", "client_key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     default=None, help="The private key (PEM) of --cert."),
        click.option("--kafka", default=None, metavar="BOOTSTRAP",
                     help="The Kafka bootstrap servers the node publishes to (enables the Kafka cases)."),
        click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                     help="A fact about the node that some checks need (repeatable)."),
        click.option("--params", "params_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="A parameter file (TOML, NAME = \"VALUE\"), e.g. the one `fixture load` writes; "
                          "--param overrides it."),
        click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per network call."),
    ]):
        f = opt(f)
    return f


def _fail_cleanly(fn: F) -> F:
    from node.cli._common import fail_cleanly

    return fail_cleanly(fn)


def _target(target: str | None, ca_cert: Path | None, client_cert: Path | None, client_key: Path | None,
            kafka: str | None, params: Sequence[str], timeout: float, params_file: Path | None = None
            ) -> NodeTarget | None:
    from conformance.fixture import read_params

    parsed: dict[str, str] = read_params(params_file) if params_file is not None else {}
    for p in params:
        name, sep, value = p.partition("=")
        if not sep or not name:
            raise InputError(f"--param {p!r}: give NAME=VALUE")
        parsed[name] = value
    if target is None:
        if any((ca_cert, client_cert, client_key, kafka, parsed)):
            raise InputError("--ca, --cert, --tls-key, --kafka, --param and --params describe a node: "
                             "give --target HOST:PORT too")
        return None
    t = NodeTarget(target, ca_cert, client_cert, client_key, kafka, parsed, timeout)
    t.host_port()
    return t


def _signing_key(statement: Path | None, key_file: Path | None) -> Any:
    if statement is None:
        if key_file is not None:
            raise InputError("--key signs a statement: give --statement OUT.ttl too")
        return None
    if key_file is None:
        raise InputError("--statement needs --key KEY.pem (create one with `shulian-conform keygen KEY.pem`)")
    from node.pki import load_signing_key

    return load_signing_key(key_file)


def _summary_json(run: Run) -> dict[str, Any]:
    return {
        "mode": run.mode,
        "conforms": run.conforms,
        "exit_code": run.exit_code,
        "standard": {"version": run.standard.version, "directory": run.standard.directory,
                     "shapes": run.standard.versions},
        "engine": run.engine,
        "tool_version": run.tool_version,
        "started": run.started.isoformat(),
        "finished": run.finished.isoformat(),
        "counts": run.counts(),
        "mandatory": {"total": len(run.mandatory), "passed": run.mandatory_passed},
        "subjects": [{"iri": s.iri, "title": s.title, "kind": s.kind, "sha256": s.sha256} for s in run.subjects],
        "cases": [{"id": r.case.id, "level": r.case.level, "outcome": r.outcome.value, "message": r.message}
                  for r in run.results],
    }


def _finish(run: Run, *, out_dir: Path, statement: Path | None, key: Any, operator: str | None, verbose: bool,
            lang: str, extra: dict[str, bytes] | None = None) -> NoReturn:
    from conformance._earl import earl_graph
    from conformance._junit import junit_xml
    from conformance._terminal import make_console, print_summary

    console = make_console()
    print_summary(run, console, verbose=verbose, lang=lang)
    files: dict[str, bytes] = {
        "junit.xml": junit_xml(run),
        "earl.ttl": earl_graph(run).serialize(format="turtle", encoding="utf-8"),
        "summary.json": (json.dumps(_summary_json(run), ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        **(extra or {}),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (out_dir / name).write_bytes(content)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot write the reports: {exc.strerror}") from exc
    click.echo(f"reports: {', '.join(str(out_dir / n) for n in files)}")
    if statement is not None:
        from conformance._statement import sign_statement

        text = sign_statement(run, key, operator=operator, reports=sorted(files.items()))
        try:
            statement.parent.mkdir(parents=True, exist_ok=True)
            statement.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{statement}: cannot write the statement: {exc.strerror}") from exc
        click.echo(f"signed statement: {statement}")
    sys.exit(run.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shulian")
def cli() -> None:
    """Shulian (数链) conformance kit: data, catalogs and nodes against the standard.

    Reports: a terminal summary, JUnit XML, EARL 1.0 (Turtle), and on request a
    signed conformance statement. Exit codes: 0 every mandatory case passed, 1 a
    mandatory case did not pass (failed, can't tell or not run), 2 usage or input
    error, 3 the node was unavailable.

    \b
    Examples:
      shulian-conform data people.jsonl --type Person
      shulian-conform catalog catalog.ttl
      shulian-conform run --standard ./ontology-full
      shulian-conform node --target node.example.gov.cn:7443 --ca ca.pem --cert kit.pem --tls-key kit.key
    """


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--type", "record_type", default=None, help="Record type (else each record's \"type\" key).")
@_engine_option
@_standard_option
@_report_options
@_fail_cleanly
def data(files: tuple[str, ...], record_type: str | None, engine: str, standard_dir: Path | None, out_dir: Path,
         statement: Path | None, key_file: Path | None, operator: str | None, verbose: bool, lang: str) -> None:
    """Records (JSON Lines or a JSON array) against the standard: one case per record.

    Writes the SHACL validation report (shacl-report.ttl) beside the other reports.

    \b
    Examples:
      shulian-conform data people.jsonl --type Person
      shulian-conform data a.jsonl b.json --engine fast --out reports/
      shulian-conform data people.jsonl --statement statement.ttl --key operator.pem --operator 某市数据局
    """
    from conformance._records import check_record_files
    from conformance._runner import finish_run, now, standard_info

    key = _signing_key(statement, key_file)
    started = now()
    results, report = check_record_files(files, record_type=record_type, engine=engine,
                                                     standard_dir=standard_dir)
    run = finish_run("data", results, started, standard_info(standard_dir, catalog=False), engine)
    shacl = report.graph().serialize(format="turtle", encoding="utf-8")
    _finish(run, out_dir=out_dir, statement=statement, key=key, operator=operator, verbose=verbose, lang=lang,
            extra={"shacl-report.ttl": shacl})


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_standard_option
@_report_options
@_fail_cleanly
def catalog(files: tuple[str, ...], standard_dir: Path | None, out_dir: Path, statement: Path | None,
            key_file: Path | None, operator: str | None, verbose: bool, lang: str) -> None:
    """A catalog (Turtle, JSON-LD, RDF/XML) against the catalog profile: one case per file.

    \b
    Examples:
      shulian-conform catalog catalog.ttl
      shulian-conform catalog catalog.jsonld --statement statement.ttl --key operator.pem
    """
    from conformance._catalogs import check_catalog_files
    from conformance._runner import finish_run, now, standard_info

    key = _signing_key(statement, key_file)
    started = now()
    results, shacl = check_catalog_files(files, standard_dir=standard_dir)
    run = finish_run("catalog", results, started, standard_info(standard_dir, records=False), None)
    _finish(run, out_dir=out_dir, statement=statement, key=key, operator=operator, verbose=verbose, lang=lang,
            extra={"shacl-report.ttl": shacl.serialize(format="turtle", encoding="utf-8")})


def _run_manifests(manifests: Sequence[Path], only: Sequence[str], engine: str, standard_dir: Path | None,
                   target: NodeTarget | None, out_dir: Path, statement: Path | None, key_file: Path | None,
                   operator: str | None, verbose: bool, lang: str) -> NoReturn:
    from conformance._manifest import load_manifests
    from conformance._runner import RunOptions, run_cases, select_cases

    key = _signing_key(statement, key_file)
    cases = select_cases(load_manifests(list(manifests)), only)
    run = run_cases(cases, RunOptions(engine=engine, standard_dir=standard_dir, target=target))
    _finish(run, out_dir=out_dir, statement=statement, key=key, operator=operator, verbose=verbose, lang=lang)


@cli.command("run")
@click.option("--manifest", "manifests", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A manifest to run (repeatable; default: the kit's record and catalog manifests).")
@click.option("--only", multiple=True, metavar="ID", help="Only these cases: an id (DAT-07) or a prefix (DAT, ACC).")
@_engine_option
@_standard_option
@_node_options
@_report_options
@_fail_cleanly
def run_command(manifests: tuple[Path, ...], only: tuple[str, ...], engine: str, standard_dir: Path | None,
                target: str | None, ca_cert: Path | None, client_cert: Path | None, client_key: Path | None,
                kafka: str | None, params: tuple[str, ...], params_file: Path | None, timeout: float, out_dir: Path,
                statement: Path | None, key_file: Path | None, operator: str | None, verbose: bool, lang: str) -> None:
    """Run test manifests (W3C test-manifest vocabulary).

    By default the data manifests: every record and catalog example of the
    standard, which the validator must judge as the manifest says. Examples with
    county-level division codes need the national division list (--standard).

    \b
    Examples:
      shulian-conform run --standard ./ontology-full
      shulian-conform run --only DAT-07 --only CTL --engine fast
      shulian-conform run --manifest conformance/manifests/manifest.ttl --target node:7443
    """
    from conformance._build import CATALOGS_MANIFEST, RECORDS_MANIFEST
    from conformance._manifest import manifests_dir

    chosen = list(manifests) or [manifests_dir() / RECORDS_MANIFEST, manifests_dir() / CATALOGS_MANIFEST]
    t = _target(target, ca_cert, client_cert, client_key, kafka, params, timeout, params_file)
    _run_manifests(chosen, only, engine, standard_dir, t, out_dir, statement, key_file, operator, verbose, lang)


@cli.command()
@click.option("--only", multiple=True, metavar="ID", help="Only these cases: an id (ACC-03) or a prefix (ACC).")
@_engine_option
@_standard_option
@_node_options
@_report_options
@_fail_cleanly
def node(only: tuple[str, ...], engine: str, standard_dir: Path | None, target: str | None, ca_cert: Path | None,
         client_cert: Path | None, client_key: Path | None, kafka: str | None, params: tuple[str, ...],
         params_file: Path | None, timeout: float, out_dir: Path, statement: Path | None, key_file: Path | None,
         operator: str | None, verbose: bool, lang: str) -> None:
    """Black-box checks of a running node (the node manifest).

    A case whose check is not implemented in this kit version is reported
    "not run" and keeps the node from conforming.

    \b
    Examples:
      shulian-conform node --target node.example.gov.cn:7443 --ca ca.pem --cert kit.pem --tls-key kit.key
      shulian-conform node --target 127.0.0.1:7443 --kafka 127.0.0.1:9092 --only KFK
      shulian-conform node --target 127.0.0.1:7443 --params kit-fixture/params.toml
    """
    from conformance._manifest import manifests_dir

    if target is None:
        raise InputError("give the node under test: --target HOST:PORT")
    t = _target(target, ca_cert, client_cert, client_key, kafka, params, timeout, params_file)
    _run_manifests([manifests_dir() / "node.ttl"], only, engine, standard_dir, t, out_dir, statement, key_file,
                   operator, verbose, lang)


@cli.group()
def manifest() -> None:
    """Build and list the test manifests.

    \b
    Examples:
      shulian-conform manifest build --check
      shulian-conform manifest list
    """


@manifest.command("build")
@click.option("--check", is_flag=True, help="Do not write; exit 1 when a generated manifest is out of date.")
@click.option("--examples", "examples_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="The examples folder (default: the shipped standard's).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the manifests go (default: the kit's manifests folder).")
@_standard_option
@_fail_cleanly
def manifest_build(check: bool, examples_dir: Path | None, out_dir: Path | None, standard_dir: Path | None) -> None:
    """Generate the data manifests (records.ttl, catalogs.ttl) from the standard's examples.

    \b
    Examples:
      shulian-conform manifest build
      shulian-conform manifest build --check
    """
    from conformance._build import build_manifests, stale_manifests, write_manifests

    texts = build_manifests(examples_dir, out_dir, standard_dir)
    if check:
        stale = stale_manifests(texts, out_dir)
        if stale:
            click.echo(f"out of date: {', '.join(stale)}; run `shulian-conform manifest build`", err=True)
            sys.exit(EXIT_FINDINGS)
        click.echo("the generated manifests are current")
        sys.exit(EXIT_OK)
    written = write_manifests(texts, out_dir)
    click.echo(f"wrote {', '.join(str(p) for p in written)}" if written else "the generated manifests are current")


@manifest.command("list")
@click.option("--manifest", "manifests", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A manifest (repeatable; default: every manifest of the kit).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per case.")
@_fail_cleanly
def manifest_list(manifests: tuple[Path, ...], as_json: bool) -> None:
    """List the cases: id, level, type, whether a node check is implemented, title.

    \b
    Examples:
      shulian-conform manifest list
      shulian-conform manifest list --json | jq 'select(.implemented == false)'
    """
    from conformance._manifest import load_manifests
    from conformance._registry import discover
    from conformance._vocab import SLT

    cases = load_manifests(list(manifests) or None)
    registry = discover()
    rows: list[dict[str, Any]] = []
    for c in cases:
        is_node = c.test_type == str(SLT.NodeTest)
        rows.append({"id": c.id, "level": c.level, "type": c.test_type.rsplit("#", 1)[-1],
                     "implemented": (c.id in registry) if is_node else True,
                     "name": {"zh": c.name_zh, "en": c.name_en}, "clauses": list(c.clauses), "suite": c.suite})
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    table = Table()
    for col in ("case", "level", "type", "implemented", "title"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["level"], r["type"], "yes" if r["implemented"] else "no", r["name"]["en"])
    from conformance._terminal import make_console

    make_console().print(table)
    missing = [r["id"] for r in rows if not r["implemented"]]
    click.echo(f"{len(rows)} cases; {len(missing)} node case(s) without a check: {', '.join(missing) or 'none'}")


@cli.command()
@click.argument("key_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--public", "public_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the public key (PEM) goes (default: KEY_FILE with .pub.pem).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@_fail_cleanly
def keygen(key_file: Path, public_file: Path | None, force: bool) -> None:
    """Create the kit operator's Ed25519 signing key (private PEM, mode 0600) and its public key.

    \b
    Examples:
      shulian-conform keygen operator.pem
      shulian-conform keygen operator.pem --public operator.pub.pem
    """
    from cryptography.hazmat.primitives import serialization

    from node.pki import generate_signing_key, key_id

    public_file = public_file or key_file.with_name(key_file.name.removesuffix(".pem") + ".pub.pem")
    for p in (key_file, public_file):
        if p.exists() and not force:
            raise InputError(f"{p}: already exists; pass --force to replace it")
    key = generate_signing_key(key_file)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_file.write_bytes(pem)
    click.echo(f"private key: {key_file} (keep it secret)\npublic key:  {public_file}\nkey id:      {key_id(key)}")


@cli.command("verify-statement")
@click.argument("statement", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--public-key", "public_key", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The operator's public key (PEM, or the base64 of its 32 bytes).")
@click.option("--json", "as_json", is_flag=True, help="Print what the statement says as JSON.")
@_fail_cleanly
def verify_statement_command(statement: Path, public_key: Path, as_json: bool) -> None:
    """Check a conformance statement's signature. Exit 0 valid, 1 it does not verify, 2 input error.

    \b
    Examples:
      shulian-conform verify-statement statement.ttl --public-key operator.pub.pem
    """
    from conformance._statement import verify_statement
    from node.pki import load_signing_public_key

    info = verify_statement(statement, load_signing_public_key(public_key))
    if as_json:
        click.echo(json.dumps({"valid": True, **dataclasses.asdict(info)}, ensure_ascii=False))
        return
    click.echo(f"{statement}: signature OK (key {info.key_id}{', ' + info.operator if info.operator else ''})")
    click.echo(f"  {info.mode} run of {info.date}, standard {info.standard_version}: "
               f"{'CONFORMS' if info.conforms else 'does NOT conform'}; "
               + ", ".join(f"{n} {k}" for k, n in info.counts.items()))
    for s in info.subjects:
        click.echo(f"  subject: {s}")


def _add_fixture_group() -> None:
    from conformance.fixture.cli import fixture

    cli.add_command(fixture)


_add_fixture_group()


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, standalone_mode=True)
    except ShulianError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code or EXIT_USAGE)

