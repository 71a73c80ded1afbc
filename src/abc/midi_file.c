/* Standard MIDI File type 1 builder and encoder (see include/melodist/midi.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melodist/midi.h"

/* Order of events sharing one tick: settings before sound, and a note's end before the next start. */
enum { RANK_META, RANK_PROGRAM, RANK_NOTE_OFF, RANK_NOTE_ON };

struct midi_event {
    uint32_t tick;
    uint32_t seq;    /* insertion order, to keep the sort stable */
    uint32_t rank;
    uint32_t len;    /* bytes of the event (status byte onwards) in the track's data */
    size_t off;
};

struct midi_track {
    struct midi_event *events;
    size_t count, cap;
    unsigned char *data;
    size_t data_len, data_cap;
};

struct midi_file {
    int ticks_per_quarter;
    struct midi_track *tracks;
    int track_count, track_cap;
    uint32_t end_tick;
};

midi_file *midi_file_new(int ticks_per_quarter)
{
    if (ticks_per_quarter < 1 || ticks_per_quarter > 0x7FFF)
        return NULL;
    midi_file *mf = calloc(1, sizeof *mf);
    if (mf)
        mf->ticks_per_quarter = ticks_per_quarter;
    return mf;
}

void midi_file_free(midi_file *mf)
{
    if (!mf)
        return;
    for (int i = 0; i < mf->track_count; i++) {
        free(mf->tracks[i].events);
        free(mf->tracks[i].data);
    }
    free(mf->tracks);
    free(mf);
}

int midi_file_ticks_per_quarter(const midi_file *mf) { return mf->ticks_per_quarter; }
int midi_track_count(const midi_file *mf) { return mf->track_count; }

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return MIDI_OK;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * elem);
    if (!p)
        return MIDI_ENOMEM;
    *buf = p;
    *cap = n;
    return MIDI_OK;
}

/* Appends one event: `head` bytes then `body` bytes (the body may be NULL/empty). */
static int add_event(midi_file *mf, int track, uint32_t tick, int rank, const unsigned char *head, size_t head_len,
                     const unsigned char *body, size_t body_len)
{
    if (track < 0 || track >= mf->track_count || tick > MIDI_MAX_TICK || body_len > 0x0FFFFFFF)
        return MIDI_EINVAL;
    struct midi_track *t = &mf->tracks[track];
    if (grow((void **)&t->events, &t->cap, t->count + 1, sizeof *t->events) ||
        grow((void **)&t->data, &t->data_cap, t->data_len + head_len + body_len, 1))
        return MIDI_ENOMEM;
    memcpy(t->data + t->data_len, head, head_len);
    if (body_len)
        memcpy(t->data + t->data_len + head_len, body, body_len);
    t->events[t->count] = (struct midi_event){tick, (uint32_t)t->count, (uint32_t)rank,
                                              (uint32_t)(head_len + body_len), t->data_len};
    t->count++;
    t->data_len += head_len + body_len;
    if (tick > mf->end_tick)
        mf->end_tick = tick;
    return MIDI_OK;
}

/* Writes v as a MIDI variable-length quantity (v <= 0x0FFFFFFF); returns the byte count (1..4). */
static size_t put_vlq(unsigned char *p, uint32_t v)
{
    unsigned char tmp[4];
    size_t n = 0;
    do {
        tmp[n++] = v & 0x7F;
        v >>= 7;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i] | (i + 1 < n ? 0x80 : 0);
    return n;
}

static int add_meta(midi_file *mf, int track, uint32_t tick, int type, const void *body, size_t len)
{
    unsigned char head[6] = {0xFF, (unsigned char)type};
    if (len > 0x0FFFFFFF)
        return MIDI_EINVAL;
    size_t n = 2 + put_vlq(head + 2, (uint32_t)len);
    return add_event(mf, track, tick, RANK_META, head, n, body, len);
}

int midi_add_track(midi_file *mf, const char *name)
{
    size_t cap = (size_t)mf->track_cap;
    if (mf->track_count == 0xFFFF || grow((void **)&mf->tracks, &cap, (size_t)mf->track_count + 1, sizeof *mf->tracks))
        return MIDI_ENOMEM;
    mf->track_cap = (int)cap;
    int index = mf->track_count++;
    memset(&mf->tracks[index], 0, sizeof mf->tracks[index]);
    if (name && *name) {
        int rc = midi_text(mf, index, 0, 3, name);
        if (rc)
            return rc;
    }
    return index;
}

int midi_tempo(midi_file *mf, int track, uint32_t tick, uint32_t usec_per_quarter)
{
    if (usec_per_quarter == 0 || usec_per_quarter > 0xFFFFFF)
        return MIDI_EINVAL;
    unsigned char b[3] = {usec_per_quarter >> 16, (usec_per_quarter >> 8) & 0xFF, usec_per_quarter & 0xFF};
    return add_meta(mf, track, tick, 0x51, b, 3);
}

int midi_time_signature(midi_file *mf, int track, uint32_t tick, int num, int den, int clocks_per_click)
{
    int log2den = 0;
    while (log2den < 7 && (1 << log2den) < den)
        log2den++;
    if (num < 1 || num > 255 || den < 1 || (1 << log2den) != den || clocks_per_click < 1 || clocks_per_click > 255)
        return MIDI_EINVAL;
    unsigned char b[4] = {(unsigned char)num, (unsigned char)log2den, (unsigned char)clocks_per_click, 8};
    return add_meta(mf, track, tick, 0x58, b, 4);
}

int midi_key_signature(midi_file *mf, int track, uint32_t tick, int sharps, int minor)
{
    if (sharps < -7 || sharps > 7 || (minor != 0 && minor != 1))
        return MIDI_EINVAL;
    unsigned char b[2] = {(unsigned char)(signed char)sharps, (unsigned char)minor};
    return add_meta(mf, track, tick, 0x59, b, 2);
}

int midi_text(midi_file *mf, int track, uint32_t tick, int type, const char *text)
{
    if (type < 1 || type > 15 || !text)
        return MIDI_EINVAL;
    return add_meta(mf, track, tick, type, text, strlen(text));
}

static int bad_channel_data(int channel, int a, int b)
{
    return channel < 0 || channel > 15 || a < 0 || a > 127 || b < 0 || b > 127;
}

int midi_program(midi_file *mf, int track, uint32_t tick, int channel, int program)
{
    if (bad_channel_data(channel, program, 0))
        return MIDI_EINVAL;
    unsigned char b[2] = {(unsigned char)(0xC0 | channel), (unsigned char)program};
    return add_event(mf, track, tick, RANK_PROGRAM, b, 2, NULL, 0);
}

int midi_note(midi_file *mf, int track, uint32_t start, uint32_t duration, int channel, int pitch, int velocity)
{
    if (bad_channel_data(channel, pitch, velocity) || velocity == 0 || duration == 0 ||
        duration > MIDI_MAX_TICK - start || start > MIDI_MAX_TICK)
        return MIDI_EINVAL;
    unsigned char on[3] = {(unsigned char)(0x90 | channel), (unsigned char)pitch, (unsigned char)velocity};
    unsigned char off[3] = {(unsigned char)(0x80 | channel), (unsigned char)pitch, 0};
    int rc = add_event(mf, track, start, RANK_NOTE_ON, on, 3, NULL, 0);
    return rc ? rc : add_event(mf, track, start + duration, RANK_NOTE_OFF, off, 3, NULL, 0);
}

static int event_order(const void *pa, const void *pb)
{
    const struct midi_event *a = pa, *b = pb;
    if (a->tick != b->tick)
        return a->tick < b->tick ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void put_be(unsigned char *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

int midi_file_bytes(const midi_file *mf, unsigned char **out, size_t *len)
{
    /* Upper bound: header, per track a chunk header + end-of-track + per event a 4-byte delta. */
    size_t size = 14;
    for (int i = 0; i < mf->track_count; i++)
        size += 8 + 8 + mf->tracks[i].data_len + 4 * mf->tracks[i].count;
    unsigned char *buf = malloc(size);
    if (!buf)
        return MIDI_ENOMEM;
    memcpy(buf, "MThd", 4);
    put_be(buf + 4, 6, 4);
    put_be(buf + 8, 1, 2);
    put_be(buf + 10, (uint32_t)mf->track_count, 2);
    put_be(buf + 12, (uint32_t)mf->ticks_per_quarter, 2);
    size_t pos = 14;
    for (int i = 0; i < mf->track_count; i++) {
        const struct midi_track *t = &mf->tracks[i];
        struct midi_event *sorted = malloc((t->count ? t->count : 1) * sizeof *sorted);
        if (!sorted) {
            free(buf);
            return MIDI_ENOMEM;
        }
        if (t->count)
            memcpy(sorted, t->events, t->count * sizeof *sorted);
        qsort(sorted, t->count, sizeof *sorted, event_order);
        memcpy(buf + pos, "MTrk", 4);
        size_t chunk = pos + 8;
        pos = chunk;
        uint32_t now = 0;
        for (size_t e = 0; e < t->count; e++) {
            pos += put_vlq(buf + pos, sorted[e].tick - now);
            now = sorted[e].tick;
            memcpy(buf + pos, t->data + sorted[e].off, sorted[e].len);
            pos += sorted[e].len;
        }
        free(sorted);
        pos += put_vlq(buf + pos, mf->end_tick - now);
        memcpy(buf + pos, "\xFF\x2F\x00", 3);
        pos += 3;
        put_be(buf + chunk - 4, (uint32_t)(pos - chunk), 4);
    }
    *out = buf;
    *len = pos;
    return MIDI_OK;
}

static void set_err(char *err, size_t errlen, const char *what, const char *path, int e)
{
    if (err && errlen)
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int midi_file_write(const midi_file *mf, const char *path, char *err, size_t errlen)
{
    unsigned char *bytes;
    size_t len;
    size_t tmp_len = strlen(path) + sizeof ".tmpXXXXXX";
    char *tmp = malloc(tmp_len);
    if (!tmp || midi_file_bytes(mf, &bytes, &len)) {
        free(tmp);
        set_err(err, errlen, "cannot encode", path, ENOMEM);
        return MIDI_ENOMEM;
    }
    snprintf(tmp, tmp_len, "%s.tmpXXXXXX", path);
    int rc = MIDI_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        set_err(err, errlen, "cannot create a temporary file next to", path, errno);
        rc = MIDI_EIO;
    } else {
        int failed = write_all(fd, bytes, len) || fchmod(fd, 0644);
        int saved = errno;
        if (close(fd) && !failed) {
            failed = 1;
            saved = errno;
        }
        if (!failed && rename(tmp, path)) {
            failed = 1;
            saved = errno;
        }
        if (failed) {
            set_err(err, errlen, "cannot write", path, saved);
            unlink(tmp);
            rc = MIDI_EIO;
        }
    }
    free(tmp);
    free(bytes);
    return rc;
}
