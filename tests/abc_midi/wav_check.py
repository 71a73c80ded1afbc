#!/usr/bin/python3
"""Checks a rendered WAV: a valid RIFF/PCM header (16-bit, stereo, 44.1 kHz, sizes consistent with the file),
a duration of the music plus a release tail (0 to 2.1 s), sound during the music (RMS well above zero) and
no clipping run. Uses Python's own wave module as the independent reader.

usage: wav_check.py FILE.wav MUSIC_SECONDS"""
import os
import struct
import sys
import wave


def main():
    path, music = sys.argv[1], float(sys.argv[2])
    raw = open(path, "rb").read(44)
    riff, riff_size, wave_id = struct.unpack("<4sI4s", raw[:12])
    problems = []
    if riff != b"RIFF" or wave_id != b"WAVE" or riff_size != os.path.getsize(path) - 8:
        problems.append(f"bad RIFF header: {riff!r} size {riff_size} vs file {os.path.getsize(path)}")
    with wave.open(path, "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getcomptype()) != (2, 2, 44100, "NONE"):
            problems.append(f"format {w.getparams()} is not 16-bit stereo 44.1 kHz PCM")
        frames = w.getnframes()
        data = w.readframes(frames)
    seconds = frames / 44100
    if not music <= seconds <= music + 2.1:
        problems.append(f"duration {seconds:.3f} s, expected {music:.3f} s plus a tail of at most 2.1 s")
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    in_music = samples[: int(music * 44100) * 2]
    rms = (sum(s * s for s in in_music) / max(1, len(in_music))) ** 0.5
    if rms < 100:
        problems.append(f"the music part is (nearly) silent: RMS {rms:.1f}")
    clipped = sum(1 for s in samples if abs(s) >= 32767)
    if clipped > len(samples) // 1000:
        problems.append(f"{clipped} clipped samples")
    if problems:
        print(f"{path}: " + "; ".join(problems))
        return 1
    print(f"{path}: {seconds:.3f} s (music {music:.3f} s), RMS {rms:.0f}, {clipped} clipped samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
