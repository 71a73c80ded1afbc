#!/usr/bin/python3
"""Must-show 5: bar counts, meters and declared keys of the analysis agree with the collections' own fields,
and the chord progression per bar of the Nottingham tunes agrees with an independent extraction.

    oracle_fields.py DUMP_TOOL SHARED_DATA_DIR

The oracles, none of them taken from our own output:
  - meter and key of every tune, read here from the raw text with a few regular expressions (the meter in
    force at the first music line: the Nottingham files put the real M: after K:, see nottingham/SOURCE.md);
  - the per-collection M: and K: histograms in each stats.json (the collections' published fields), whose
    labels are read by the small key/meter readers below;
  - written bar counts and chord symbols per bar from a regular-expression pass over the music lines
    (bar lines split bars; strings, comments, decorations and fields removed; a bar counts when it holds a
    note or rest), on the tunes with one voice.
Prints agreement per collection, key-detection agreement with the declared keys, and the differences; exits 1
when an agreement is below its bound, 77 when the shared data is missing.
"""
import collections
import json
import os
import re
import subprocess
import sys

COLLECTIONS = ["nottingham", "essen_europe", "essen_china", "shlien_balkan"]
LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# abc_mode numbers of melodist/abc.h
MODES = {"maj": 0, "ion": 0, "min": 1, "aeo": 1, "m": 1, "mix": 2, "dor": 3, "phr": 4, "lyd": 5, "loc": 6}
MINORISH = {1, 3, 4, 6}  # modes with a minor third
RELATIVE_MAJOR = {0: 0, 1: 3, 2: 5, 3: 10, 4: 8, 5: 7, 6: 1}  # semitones from a mode's tonic to its major
PENTA_DEGREE = {"gong": 0, "shang": 2, "jue": 4, "zhi": 7, "yu": 9}
BOUNDS = {"meter": 99.0, "key": 99.0, "bars": 98.0, "chords": 98.0, "form": 70.0}


def read_key(text):
    """K: value -> 'pc:mode', 'none', or None when it is not a valid key."""
    v = text.strip()
    if v == "" or v.lower().startswith("none") or v.startswith("HP") or v.startswith("Hp"):
        return "none"
    m = re.match(r"([A-G])([#b]?)\s*([A-Za-z]*)", v)
    if not m:
        return "none" if re.match(r"[_=^]", v) else None
    pc = (LETTER_PC[m.group(1)] + {"#": 1, "b": -1, "": 0}[m.group(2)]) % 12
    word = m.group(3)
    if word == "" or "=" in v[m.end(3):m.end(3) + 1]:
        mode = 0
    elif word.lower() == "m":
        mode = 1
    elif word[:3].lower() in MODES:
        mode = MODES[word[:3].lower()]
    else:
        return None
    return f"{pc}:{mode}"


def read_meter(text):
    v = (text or "").strip()
    if v in ("", "none", "(none)"):
        return "none"
    if v == "C":
        return "4/4"
    if v == "C|":
        return "2/2"
    m = re.fullmatch(r"\(?([\d+ ]+)\)?\s*/\s*(\d+)", v)
    if not m:
        return None
    return f"{sum(int(x) for x in m.group(1).replace(' ', '').split('+') if x)}/{int(m.group(2))}"


def split_tunes(text):
    tunes, cur = [], None
    for line in text.split("\n"):
        if re.match(r"X:\s*\d", line):
            cur = [line]
            tunes.append(cur)
        elif cur is not None:
            cur.append(line)
    return tunes


FIELD = re.compile(r"^[A-Za-z]:")


def header_and_body(lines):
    """Header fields up to and including the first K:, then the meter in force at the first music line."""
    fields, i = [], 1
    while i < len(lines):
        line = lines[i]
        i += 1
        if FIELD.match(line):
            fields.append((line[0], line[2:].split("%")[0].strip()))
            if line[0] == "K":
                break
    body = lines[i:]
    meter = None
    for key, value in fields:
        if key == "M":
            meter = value
    for line in body:
        if line.strip() == "" or line.startswith("%"):
            continue
        if FIELD.match(line):
            if line[0] == "M":
                meter = line[2:].split("%")[0].strip()
            continue
        inline = re.match(r"[|:\s]*\[M:([^\]]*)\]", line)  # a meter change before the first note
        if inline:
            meter = inline.group(1).strip()
        break
    key = next((v for k, v in fields if k == "K"), None)
    return meter, key, body


BAR = re.compile(r":*\[?\|+\]?:*|::|:\|\]|\[\|")


def bars_of(body):
    """Written bars holding music, each with the chord symbols written in it (music lines only)."""
    music, chords = [], []

    def keep(m):  # chord symbols become tokens, annotations go
        s = m.group(1)
        if s[:1] in "^_<>@":
            return " "
        chords.append(s)
        return f" \x01{len(chords) - 1}\x01 "

    for line in body:
        if line.strip() == "" or FIELD.match(line) or line.startswith("%"):
            continue
        line = re.sub(r'"([^"]*)("|$)', keep, line)  # a string never spans lines
        line = re.sub(r"%.*", "", line)
        music.append(line.rstrip("\\"))
    text = " ".join(music)
    text = re.sub(r"![^!]*!|\+[^+\s|]*\+", " ", text)   # decorations
    text = re.sub(r"\[[A-Za-z]:[^\]]*\]", " ", text)      # inline fields
    text = re.sub(r"\[\d[\d,\-]*", " ", text)              # [1 endings
    bars = []
    for seg in BAR.split(text):
        seg = re.sub(r"^\d[\d,\-]*", "", seg.strip())       # |1 endings
        names = [chords[int(n)] for n in re.findall(r"\x01(\d+)\x01", seg)]
        notes = re.sub(r"\x01\d+\x01", "", seg)
        if re.search(r"[A-Ga-gzZxX]", notes):
            bars.append(names)
        elif names and bars:
            bars[-1].extend(names)  # a chord symbol written just before a bar line
    return bars


def pct(a, n):
    return 100.0 * a / n if n else 100.0


def main():
    tool, data = sys.argv[1], sys.argv[2]
    if not os.path.isdir(data):
        print(f"SKIP: shared data not found at {data}")
        return 77
    failed = False
    for name in COLLECTIONS:
        path = os.path.join(data, name, name + ".abc")
        if not os.path.exists(path):
            print(f"SKIP: {path} missing")
            return 77
        raw = split_tunes(open(path, encoding="utf-8").read())
        out = subprocess.run([tool, path], capture_output=True, text=True, check=True).stdout
        ours = {}
        for line in out.rstrip("\n").split("\n"):
            f = line.split("\t")
            ours[int(f[0])] = f
        counts = collections.Counter()
        diffs = collections.defaultdict(list)
        ks_ok = modal_ok = modal_tonic_ok = ks_tonic_ok = keyed = penta = gong_ok = key_ok = key_tonic_ok = scale_ok = 0
        our_m, our_k = collections.Counter(), collections.Counter()
        for lines in raw:
            x = int(re.match(r"X:\s*(\d+)", lines[0]).group(1))
            meter, key, body = header_and_body(lines)
            counts["tunes"] += 1
            f = ours.get(x)
            if f is None:
                diffs["missing"].append(x)
                continue
            our_m[f[4]] += 1
            our_k[f[5]] += 1
            want_m = read_meter(meter) if meter is not None else "none"
            if want_m is None:
                counts["meter_invalid"] += 1  # not a valid ABC meter (M: FREI4/4): reported, not compared
            else:
                counts["meter_checked"] += 1
                counts["meter"] += f[4] == want_m
                if f[4] != want_m:
                    diffs["meter"].append(f"X:{x} M:{meter} -> {f[4]}")
            want_k = read_key(key or "")
            if want_k is None:
                counts["key_invalid"] += 1  # not a valid ABC key (K: H, K: Es): reported, not compared
            else:
                counts["key_checked"] += 1
                counts["key"] += f[5] == want_k
                if f[5] != want_k:
                    diffs["key"].append(f"X:{x} K:{key} -> {f[5]}")
            if want_k not in (None, "none"):
                keyed += 1
                dpc, dmode = map(int, want_k.split(":"))
                kpc, kmode = map(int, f[6].split(":"))
                mpc, mmode = map(int, f[7].split(":"))
                ks_tonic_ok += kpc == dpc
                ks_ok += kpc == dpc and (kmode == 1) == (dmode in MINORISH)
                fpc, fmode = map(int, f[15].split(":"))
                key_tonic_ok += fpc == dpc
                key_ok += fpc == dpc and (fmode == 1) == (dmode in MINORISH)
                modal_tonic_ok += mpc == dpc
                modal_ok += mpc == dpc and mmode == dmode
                scale_ok += (mpc + RELATIVE_MAJOR[mmode]) % 12 == (dpc + RELATIVE_MAJOR[dmode]) % 12
                if f[8] != "-":
                    penta += 1
                    gong_ok += (int(f[9]) - PENTA_DEGREE[f[8]]) % 12 == dpc
            if int(f[3]) == 1 and not any(l.startswith("V:") or "[V:" in l for l in lines):
                bars = bars_of(body)
                counts["bars_checked"] += 1
                counts["bars"] += int(f[1]) == len(bars)
                if int(f[1]) != len(bars):
                    diffs["bars"].append(f"X:{x} {len(bars)} -> {f[1]}")
                part_order = next((l[2:].strip() for l in lines if l.startswith("Y:")), None)
                if name == "nottingham" and part_order:
                    # Nottingham's Y: field is the order of the parts; compare with runs collapsed (AABB ~ AB),
                    # since a part's own repeats are not in Y:
                    def runs(s):
                        return re.sub(r"(.)\1+", r"\1", s)
                    counts["form_checked"] += 1
                    counts["form"] += runs(f[13]) == runs(part_order)
                    if runs(f[13]) != runs(part_order):
                        diffs["form"].append(f"X:{x} Y:{part_order} -> {f[13]}")
                if name == "nottingham":
                    got = [b.split(",") if b else [] for b in f[14].split("|")] if len(f) > 14 and f[14] else []
                    counts["chords_checked"] += 1
                    counts["chords"] += got == bars
                    if got != bars:
                        diffs["chords"].append(f"X:{x}")
        n = counts["tunes"]
        print(f"{name}: {n} tunes, {n - len(diffs['missing'])} analysed")
        print(f"  meter agrees with the M: fields: {counts['meter']}/{counts['meter_checked']} "
              f"({pct(counts['meter'], counts['meter_checked']):.2f}%), {counts['meter_invalid']} invalid M: "
              f"not compared")
        print(f"  declared key agrees with K: {counts['key']}/{counts['key_checked']} "
              f"({pct(counts['key'], counts['key_checked']):.2f}%), {counts['key_invalid']} invalid K: not compared")
        print(f"  written bars agree with a regex count: {counts['bars']}/{counts['bars_checked']} "
              f"({pct(counts['bars'], counts['bars_checked']):.2f}%)")
        if name == "nottingham":
            print(f"  form agrees with the Y: part order (repeated runs collapsed): {counts['form']}/"
                  f"{counts['form_checked']} ({pct(counts['form'], counts['form_checked']):.2f}%)")
            print(f"  chords per bar agree with a regex extraction: {counts['chords']}/{counts['chords_checked']} "
                  f"({pct(counts['chords'], counts['chords_checked']):.2f}%)")
        print(f"  key detection vs declared key ({keyed} tunes with a tonic): Krumhansl-Schmuckler tonic "
              f"{pct(ks_tonic_ok, keyed):.1f}%, tonic+major/minor {pct(ks_ok, keyed):.1f}%; with the final: tonic "
              f"{pct(key_tonic_ok, keyed):.1f}%, tonic+major/minor {pct(key_ok, keyed):.1f}%; "
              f"modal tonic {pct(modal_tonic_ok, keyed):.1f}%, tonic+mode {pct(modal_ok, keyed):.1f}%, "
              f"scale (key signature) {pct(scale_ok, keyed):.1f}%")
        print(f"  pentatonic: {penta} tunes ({pct(penta, keyed):.1f}%); their gong (pentatonic key) equals the "
              f"declared K: tonic in {pct(gong_ok, penta):.1f}%")
        # The published histograms (stats.json) were counted before the files lost a few tunes (nottingham:
        # 1034 in stats.json, 1013 X: in the file and in index.tsv), so they are compared as shares.
        stats = json.load(open(os.path.join(data, name, "stats.json")))
        hist_bad = []
        for field, ours_hist, reader in (("M", our_m, read_meter), ("K", our_k, read_key)):
            published = collections.Counter()
            for label, cnt in stats.get(field, {}).items():
                if reader(label) is not None:
                    published[reader(label)] += cnt
            # a truncated histogram (only the commonest labels; spellings such as Em/Emin counted apart)
            # gives a lower bound only
            truncated = sum(stats.get(field, {}).values()) < stats["tunes"]
            for label, cnt in published.items():
                share, ours_share = cnt / stats["tunes"], ours_hist[label] / max(1, len(ours))
                if share - ours_share > 0.015 or (not truncated and ours_share - share > 0.015):
                    hist_bad.append(f"{field}:{label} {100 * share:.1f}% published, {100 * ours_share:.1f}% ours")
        print(f"  stats.json M:/K: shares within 1.5 points: {'yes' if not hist_bad else '; '.join(hist_bad)}")
        for kind in ("missing", "meter", "key", "bars", "chords", "form"):
            if diffs[kind]:
                print(f"  {kind} differences ({len(diffs[kind])}): {' '.join(map(str, diffs[kind][:12]))}")
        for kind, num, den in (("meter", counts["meter"], counts["meter_checked"]),
                               ("key", counts["key"], counts["key_checked"]),
                               ("bars", counts["bars"], counts["bars_checked"]),
                               ("chords", counts["chords"], counts["chords_checked"]),
                               ("form", counts["form"], counts["form_checked"])):
            if pct(num, den) < BOUNDS[kind]:
                print(f"  FAIL: {kind} agreement {pct(num, den):.2f}% < {BOUNDS[kind]}%")
                failed = True
        if diffs["missing"] or hist_bad:
            print("  FAIL: tunes missing from the analysis or histogram mismatch")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
