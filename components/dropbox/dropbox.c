/*
 * dropbox: a ferry component for files in Dropbox (API v2), over the
 * host's HTTP helper.
 *
 * Actions: dropbox.list_folder, dropbox.get_latest_cursor,
 * dropbox.get_metadata, dropbox.download, dropbox.upload, dropbox.move,
 * dropbox.delete. Trigger: dropbox.new_files, a file-listing poll.
 * Connection types: dropbox.oauth2 (the host's token service) and
 * dropbox.token (a fixed bearer token).
 *
 * Files: call.c (requests, errors, rate limits, listing with has_more),
 * files.c (the RPC actions), transfer.c (download, upload and upload
 * sessions), poll.c (the trigger), dbxutil.c (pure helpers: the header
 * escaping, content_hash, inputs' sizes and times). docs/dropbox.md is the
 * reference for users.
 */
#include "dropbox_internal.h"

const ferry_api *dbx_api;

static const ferry_input list_folder_inputs[] = {
    {"path", "string", 0, "\"\"",
     "the folder: \"\" (or \"/\") for the root, \"/a/b\", \"id:...\" or "
     "\"ns:...\""},
    {"recursive", "boolean", 0, "false", "list every folder below too"},
    {"include_deleted", "boolean", 0, "false",
     "also list entries of deleted files and folders (\".tag\": "
     "\"deleted\")"},
    {"limit", "integer", 0, NULL,
     "entries per page asked of Dropbox, 1 to 2000 (an approximate maximum); "
     "every page is fetched anyway"},
    {"max_entries", "integer", 0, "0",
     "stop after the page that reaches this many entries (0: no limit); "
     "has_more is then true and cursor goes on from there"},
    {"cursor", "string", 0, NULL,
     "go on from this cursor (files/list_folder/continue) instead of "
     "listing path: only what changed since it was returned"},
    {"cursor_key", "string", 0, NULL,
     "keep the cursor in the instance's state under this name: continue "
     "from the stored one when there is one, store the new one when the "
     "step succeeds"},
    {0}};

static const ferry_input latest_cursor_inputs[] = {
    {"path", "string", 0, "\"\"", "the folder, as for list_folder"},
    {"recursive", "boolean", 0, "false", "watch every folder below too"},
    {"include_deleted", "boolean", 0, "false",
     "list deleted entries when continuing from the cursor"},
    {"cursor_key", "string", 0, NULL,
     "store the cursor in the instance's state under this name, for "
     "list_folder's cursor_key"},
    {0}};

static const ferry_input get_metadata_inputs[] = {
    {"path", "string", 1, NULL, "the file or folder (a path or \"id:...\")"},
    {"include_deleted", "boolean", 0, "false",
     "describe a deleted file (\".tag\": \"deleted\") instead of failing"},
    {"missing_ok", "boolean", 0, "false",
     "true: a path that does not exist outputs null instead of failing"},
    {0}};

static const ferry_input download_inputs[] = {
    {"path", "string", 1, NULL,
     "the file: a path, \"id:...\", or \"rev:...\" for an older version"},
    {"as", "string", 0, "\"blob\"",
     "\"blob\": the content as a blob (any size, streamed); \"text\": as a "
     "string (UTF-8, up to max_text_bytes)"},
    {"max_text_bytes", "integer", 0, "1048576",
     "with as \"text\": a larger file fails the step"},
    {"verify", "boolean", 0, "true",
     "check the bytes against the size and content_hash Dropbox sends"},
    {"timeout", "string", 0, "\"30m\"", "limit for the whole transfer"},
    {0}};

static const ferry_input upload_inputs[] = {
    {"path", "string", 1, NULL, "where to write the file (\"/a/b.xml\")"},
    {"blob", "blob", 0, NULL, "the content, from a blob (streamed)"},
    {"text", "string", 0, NULL, "the content, from a string (UTF-8)"},
    {"mode", "string", 0, "\"add\"",
     "\"add\": never replace a file (a conflict fails, or autorename); "
     "\"overwrite\": replace it; \"update\": replace only the version 'rev'"},
    {"rev", "string", 0, NULL, "with mode \"update\": the rev to replace"},
    {"autorename", "boolean", 0, "false",
     "on a conflict, let Dropbox choose another name"},
    {"mute", "boolean", 0, "false",
     "do not notify the user's devices of the change"},
    {"strict_conflict", "boolean", 0, "false",
     "with mode \"update\": also a conflict when the file was deleted or "
     "the content is the same"},
    {"client_modified", "string", 0, NULL,
     "the modification time to record, \"2015-05-12T15:50:38Z\""},
    {"session_threshold", "any", 0, "\"150MiB\"",
     "larger files go through an upload session (\"150MiB\" at most, or "
     "bytes)"},
    {"chunk_size", "any", 0, "\"8MiB\"",
     "bytes per request of an upload session (up to \"150MiB\")"},
    {"timeout", "string", 0, "\"30m\"",
     "limit for each request (the whole file, or one chunk)"},
    {0}};

static const ferry_input move_inputs[] = {
    {"from_path", "string", 1, NULL, "the file or folder to move"},
    {"to_path", "string", 1, NULL,
     "its new path (missing folders are created)"},
    {"autorename", "boolean", 0, "false",
     "when to_path is taken, let Dropbox choose another name; false fails "
     "the step (to/conflict)"},
    {"allow_ownership_transfer", "boolean", 0, "false",
     "allow moves that change the content's owner"},
    {0}};

static const ferry_input delete_inputs[] = {
    {"path", "string", 1, NULL,
     "the file or folder (a folder is deleted with everything in it)"},
    {"parent_rev", "string", 0, NULL,
     "delete the file only if this is its current rev"},
    {"missing_ok", "boolean", 0, "false",
     "true: a path that does not exist is not an error"},
    {0}};

static const ferry_input new_files_inputs[] = {
    {"path", "string", 1, NULL,
     "the folder to watch: \"\" or \"/\" for the root, or \"/a/b\""},
    {"recursive", "boolean", 0, "false",
     "watch every folder below too (folders whose name starts with '.' are "
     "skipped)"},
    {0}};

static const ferry_action actions[] = {
    {.id = "dropbox.list_folder",
     .label = "List a folder",
     .description = "Lists a folder's entries, following has_more with "
                    "files/list_folder/continue; or, from a cursor, what "
                    "changed since.",
     .inputs = list_folder_inputs,
     .output = "{\"entries\": [{\".tag\", \"name\", \"path_display\", "
               "\"path_lower\", \"id\", \"rev\", \"size\", "
               "\"server_modified\", \"client_modified\", \"content_hash\", "
               "...}], \"cursor\", \"has_more\", \"count\"}",
     .run = dbx_action_list_folder,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "dropbox.get_latest_cursor",
     .label = "Latest cursor of a folder",
     .description = "A cursor for a folder as it is now, so that a later "
                    "list_folder from it returns only the changes.",
     .inputs = latest_cursor_inputs,
     .output = "{\"cursor\"}",
     .run = dbx_action_get_latest_cursor,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "dropbox.get_metadata",
     .label = "Metadata of a file or folder",
     .description = "The metadata of one file or folder (files/get_metadata).",
     .inputs = get_metadata_inputs,
     .output = "{\".tag\", \"name\", \"path_display\", \"path_lower\", "
               "\"id\", \"rev\", \"size\", \"server_modified\", "
               "\"content_hash\", ...} or null",
     .run = dbx_action_get_metadata,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "dropbox.download",
     .label = "Download a file",
     .description = "Downloads a file to a blob (streamed) or a string, "
                    "with its metadata from Dropbox-API-Result.",
     .inputs = download_inputs,
     .output = "{\"name\", \"path_display\", \"path_lower\", \"id\", "
               "\"rev\", \"size\", \"server_modified\", \"content_hash\", "
               "..., \"blob\" | \"text\"}",
     .run = dbx_action_download,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "dropbox.upload",
     .label = "Upload a file",
     .description = "Writes a file from a blob or a string: one request up "
                    "to session_threshold, an upload session above.",
     .inputs = upload_inputs,
     .output = "{\"name\", \"path_display\", \"path_lower\", \"id\", "
               "\"rev\", \"size\", \"server_modified\", \"content_hash\", "
               "...}",
     .run = dbx_action_upload},
    {.id = "dropbox.move",
     .label = "Move or rename",
     .description = "Moves a file or folder (files/move_v2).",
     .inputs = move_inputs,
     .output = "{\"metadata\": {...}}",
     .run = dbx_action_move},
    {.id = "dropbox.delete",
     .label = "Delete",
     .description = "Deletes a file or folder (files/delete_v2).",
     .inputs = delete_inputs,
     .output = "{\"metadata\": {... as it was} | null, \"deleted\"}",
     .run = dbx_action_delete},
    {0}};

static const ferry_trigger triggers[] = {
    {.id = "dropbox.new_files",
     .label = "New files in a folder",
     .description = "Lists a folder's files for the host to take (with the "
                    "flow's file options) and carries out the moves and "
                    "deletes of the files whose executions ended.",
     .inputs = new_files_inputs,
     .poll = dbx_poll_new_files,
     .flags = FERRY_TRIGGER_FILES},
    {0}};

static const ferry_input oauth2_fields[] = {
    {"token_url", "string", 0, "\"https://api.dropboxapi.com/oauth2/token\"",
     "the token endpoint"},
    {"client_id", "string", 1, NULL, "the app key"},
    {"client_secret", "string", 0, NULL,
     "the app secret (secret); none for a PKCE-only app"},
    {"client_auth", "string", 0, "\"body\"",
     "how the app authenticates at the token endpoint: body (client_id and "
     "client_secret as form fields, as Dropbox's SDKs do) or basic"},
    {"scopes", "any", 0, NULL,
     "scopes to ask for (\"files.content.read files.content.write\"); "
     "none: the app's"},
    {"grant", "string", 0, "\"authorization_code\"",
     "authorization_code (authorise through the host, which keeps the "
     "refresh token) or refresh_token (with refresh_token set)"},
    {"authorize_url", "string", 0,
     "\"https://www.dropbox.com/oauth2/authorize?token_access_type=offline\"",
     "the authorization endpoint; token_access_type=offline asks for a "
     "refresh token"},
    {"refresh_token", "string", 0, NULL,
     "a refresh token obtained elsewhere (secret)"},
    {"api_url", "string", 0, "\"" DBX_API_URL "\"",
     "the API host (RPC routes)"},
    {"content_url", "string", 0, "\"" DBX_CONTENT_URL "\"",
     "the content host (download and upload)"},
    {0}};

static const ferry_input token_fields[] = {
    {"token", "string", 1, NULL, "an access token (secret)"},
    {"api_url", "string", 0, "\"" DBX_API_URL "\"",
     "the API host (RPC routes)"},
    {"content_url", "string", 0, "\"" DBX_CONTENT_URL "\"",
     "the content host (download and upload)"},
    {0}};

static const ferry_connection_type connections[] = {
    {.id = "dropbox.oauth2",
     .label = "Dropbox (OAuth 2.0)",
     .description = "A Dropbox app's access, with short-lived access tokens "
                    "the host obtains and refreshes from a refresh token.",
     .auth = "oauth2",
     .fields = oauth2_fields},
    {.id = "dropbox.token",
     .label = "Dropbox (access token)",
     .description = "A fixed access token sent as Authorization: Bearer.",
     .auth = "bearer",
     .fields = token_fields},
    {0}};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .name = "dropbox",
    .version = "1.0.0",
    .description = "Files in Dropbox (API v2): list, download, upload, move, "
                   "delete, and a poll trigger for new files.",
    .actions = actions,
    .triggers = triggers,
    .connections = connections,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    dbx_api = host;
    return &desc;
}
