/* Runs the plugin calls of tool-use records (sft.tools.jsonl lines on stdin) with abc_tools_run on the record's
 * attached file (else its user message), and prints one line per record: the plugin's result, or "ERROR: why". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melodist/abc_tools.h"
#include "melodist/json.h"

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        char err[512];
        struct json *rec = json_parse(line, (size_t)len, err, sizeof err);
        const struct json *msgs = rec ? json_get(rec, "messages") : NULL;
        const char *user = NULL, *call = NULL;
        for (size_t i = 0; msgs && msgs->type == JSON_ARRAY && i < msgs->count; i++) {
            const char *role = json_string_or(&msgs->items[i], "role", "");
            if (!strcmp(role, CHAT_ROLE_FILE) || (!strcmp(role, "user") && !user))
                user = json_string_or(&msgs->items[i], "content", NULL);
            if (!strcmp(role, "assistant") && !call)
                call = json_string_or(&msgs->items[i], "content", NULL);
        }
        size_t b, e;
        char *result = NULL;
        if (!user || !call)
            snprintf(err, sizeof err, "not a tool-use record (no user message or no assistant call)");
        else if (!chat_find_call(call, &b, &e))
            snprintf(err, sizeof err, "the assistant's first message holds no plugin call");
        else
            result = abc_tools_run(user, call + b, e - b, err, sizeof err);
        if (result)
            printf("%s\n", result);
        else
            printf("ERROR: %s\n", err);
        free(result);
        json_free(rec);
    }
    free(line);
    return 0;
}
