"""Writing docs/benchmarks.md: a run replaces only what it measured.

The file has three parts: the generated report of workloads 1-8 (header, then one
`## N.` section per workload), the soak's block (between SOAK_BEGIN and SOAK_END) and the
hand-written findings (from FINDINGS_MARK on). A run rewrites the header and the sections of
the workloads it ran; sections of workloads it did not run are kept from the old file, marked
with the run they came from. The soak block is replaced only by a soak run; the findings
are never touched.
"""

import re

from common import log

FINDINGS_MARK = "<!-- findings: kept across regenerations -->"
SOAK_BEGIN = "<!-- soak: begin (replaced by `--only soak` runs) -->"
SOAK_END = "<!-- soak: end -->"
KEPT_NOTE = "_Not run by the command above: kept from an earlier run"
SECTION = re.compile(r"^## (\d+)\. ", re.M)


def split_doc(text):
    """(top, soak block or "", findings or "") of an existing file."""
    findings = ""
    if FINDINGS_MARK in text:
        text, findings = text[:text.index(FINDINGS_MARK)], text[text.index(FINDINGS_MARK):]
    soak = ""
    if SOAK_BEGIN in text and SOAK_END in text:
        i, j = text.index(SOAK_BEGIN), text.index(SOAK_END) + len(SOAK_END)
        text, soak = text[:i] + text[j:], text[i:j]
    return text.rstrip() + "\n", soak, findings


def sections(top):
    """{workload number: its section text} of a generated top part."""
    marks = list(SECTION.finditer(top))
    out = {}
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(top)
        out[int(m.group(1))] = top[m.start():end].rstrip() + "\n"
    return out


def provenance(top):
    """"`command`, date" of the run that produced an old top part."""
    cmd = re.search(r"## Command\n\n```\n(.*?)\n```", top, re.S)
    date = re.search(r"^Date: (.*)$", top, re.M)
    return f"`{cmd.group(1).strip() if cmd else '?'}`, {date.group(1) if date else 'date unknown'}"


def merge(old, top=None, soak=None):
    """The new file: `top` (this run's report of workloads 1-8, or None when none ran) and
    `soak` (this run's soak block, or None) merged into the old file's text."""
    old_top, old_soak, findings = split_doc(old or "")
    if top is None:
        new_top = old_top
    else:
        ran = sections(top)
        kept = []
        for num, text in sorted(sections(old_top).items()):
            if num in ran:
                continue
            if KEPT_NOTE not in text:
                head, _, body = text.partition("\n")
                text = f"{head}\n\n{KEPT_NOTE} ({provenance(old_top)})._\n{body}"
            kept.append((num, text))
        parts = {**ran, **dict(kept)}
        header = top[:SECTION.search(top).start()] if SECTION.search(top) else top
        new_top = header.rstrip() + "\n\n" + "\n".join(parts[n] for n in sorted(parts))
    block = old_soak
    if soak is not None:
        block = f"{SOAK_BEGIN}\n{soak.rstrip()}\n{SOAK_END}"
    text = new_top.rstrip() + "\n\n" + (block + "\n\n" if block else "")
    return text + (findings or FINDINGS_MARK + "\n")


def write_doc(path, top=None, soak=None):
    """Write the merged report to path."""
    try:
        old = open(path).read()
    except OSError:
        old = ""
    with open(path, "w") as fh:
        fh.write(merge(old, top, soak))
    log(f"wrote {path}")
