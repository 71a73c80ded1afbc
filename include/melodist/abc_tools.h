/* The ABC engine as InternLM2 plugins: what the Melodist model calls to analyse a tune instead of guessing.
 *
 * InternLM2's agent format (InternLM/InternLM chat/chat_format.md), which the chat, the data pipeline and the
 * evaluation all follow:
 *   <|im_start|>system name=<|plugin|>\n{the plugins' schema: a JSON array}<|im_end|>\n
 *   <|im_start|>user name=file\n{the tune}<|im_end|>\n
 *   <|im_start|>user\n{the question}<|im_end|>\n
 *   <|im_start|>assistant\n<|action_start|><|plugin|>\n{"name": "abc_key", "parameters": {}}<|action_end|><|im_end|>\n
 *   <|im_start|>environment name=<|plugin|>\n{the plugin's JSON result}<|im_end|>\n
 *   <|im_start|>assistant\n{the answer}<|im_end|>\n
 *
 * The plugins work on "the tune": the ABC tune of the file attached to the question (or in the question itself,
 * abc_tools_tune_in). A tiny model cannot copy a whole tune into its call, and need not: only the phrase or chord to
 * look for is a parameter. The tune comes before the question so that the question, which decides the plugin, is
 * next to the call (a 1.4M-parameter model does not learn to look 600 tokens back for it in an afternoon).
 * Every fact a plugin returns is computed by the ABC engine (abc_analyze, abc_melody_bars, abc_key_name) exactly
 * as the SFT builder computes the reference answers (src/data/sft.c), so a correct answer restates the result.
 *
 * Nothing here prints or exits; results are malloc'd strings owned by the caller. */
#ifndef MELODIST_ABC_TOOLS_H
#define MELODIST_ABC_TOOLS_H

#include <stddef.h>

#include "melodist/abc_analysis.h"
#include "melodist/chat.h"

#define ABC_TOOLS_MAX_CALLS 3 /* plugin calls a chat runs per user message */

/* The plugin descriptions (name, description, JSON-schema parameters) as the JSON array of the plugin system
 * prompt. */
const char *abc_tools_schema(void);

/* The start of the ABC tune in a message: its first line starting with "X:", else its first line that looks like
 * a header field ("T:", "M:", ...) followed somewhere by a K: line. NULL when the text holds no tune. */
const char *abc_tools_tune_in(const char *text);

/* A message holding a question and a tune, as the model with plugins reads it: the tune as a file attached before
 * the question (CHAT_FILE, chat_session_attach) and the question's words. Returns the tune (abc_tools_tune_in) and
 * sets *question_len to the length of the text before it, trailing blanks left out; NULL when there is no tune. */
const char *abc_tools_split(const char *message, size_t *question_len);

/* The call text an assistant writes for plugin `name` with at most one string parameter (param NULL: none):
 * CHAT_ACTION_START {"name": ..., "parameters": {...}} CHAT_ACTION_END. NULL when out of memory. */
char *abc_tools_call_text(const char *name, const char *param, const char *value);

/* Runs the call (the JSON object {"name": ..., "parameters": {...}}) on the tune in message (the latest user
 * message, see abc_tools_tune_in). Returns the result as malloc'd JSON, or NULL with a message saying what is
 * wrong with the call (unknown plugin, missing parameter, no tune, a phrase that does not parse) in err; the
 * chat returns that message to the model as the environment's answer. */
char *abc_tools_run(const char *message, const char *call, size_t call_len, char *err, size_t errlen);

/* abc_tools_run as a chat plugin (chat_session_set_plugins(s, abc_tools_schema(), abc_tools_plugin, NULL, ...)). */
char *abc_tools_plugin(void *ctx, const char *user, const char *call, size_t call_len, char *err, size_t errlen);

/* Whether an answer states a plugin's result: its whole numbers are the result's numbers in order (the pickup
 * remark's bar 0 aside), and the result's strings occur in it (of "key" and "mode" the key name only, which the
 * Chinese answers keep while they translate the mode's name; "pentatonic" not at all, for the same reason).
 * melodist analyze uses it to catch an answer that misstates the result. */
int abc_tools_answer_states(const char *result, const char *answer);

/* The chord progression as one cell per written bar that holds music, "-" where no symbol is written:
 * "| G | D7 | - | G C |". malloc'd; NULL when out of memory. */
char *abc_tools_progression(const abc_analysis *a);

#endif
