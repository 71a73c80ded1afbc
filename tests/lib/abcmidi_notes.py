"""The notes abc2midi plays, read back from its MIDI file by mftext (both from Debian's abcmidi): what the ABC
oracles of tests/abc and tests/abc_analysis compare against."""
import re
import subprocess

# abc2midi playing the written notes only: no grace notes, dynamics, fermatas or guitar chords; quiet.
ABC2MIDI_FLAGS = ["-NGRA", "-NFNP", "-NCOM", "-NFER", "-NGUI", "-silent"]


def mftext_notes(mid, late_start=False, key=None):
    """[sorted (pitch, start tick, duration)] per MIDI track that has notes, channel 10 (drums) left out.
    late_start: take back the tick abc2midi starts every note late; key: the sort order within a track."""
    out = subprocess.run(["mftext", mid], capture_output=True, text=True).stdout
    tracks, cur, on = [], None, {}
    for line in out.splitlines():
        if line.startswith("Track start"):
            cur, on = [], {}
        elif line.startswith("Track end"):
            if cur:
                tracks.append(sorted(cur, key=key))
            cur = None
        elif cur is not None:
            m = re.match(r"Time=(\d+)\s+Note (on|off), chan=(\d+) pitch=(\d+) vol=(\d+)", line)
            if not m:
                continue
            t, kind, ch, p, vol = int(m[1]), m[2], int(m[3]), int(m[4]), int(m[5])
            if ch == 10:  # percussion channel: drum accompaniment, not notes of the tune
                continue
            if kind == "on" and vol > 0:
                on.setdefault((ch, p), []).append(t)
            elif on.get((ch, p)):
                start = on[(ch, p)].pop(0)
                if late_start:
                    start = start - 1 if start > 0 else 0
                cur.append((p, start, t - start))
    return tracks
