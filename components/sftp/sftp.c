/*
 * sftp: a ferry component for files on SFTP servers (libssh2).
 *
 * Actions: sftp.list, sftp.stat, sftp.get, sftp.put, sftp.move,
 * sftp.delete, sftp.mkdir. Trigger: sftp.new_files, a file-listing poll.
 * Connection type: sftp.server.
 *
 * Files: session.c (connecting, the host key, authentication, the session
 * cache, renaming), errors.c, ops.c (stat, mkdir -p, helpers), actions.c,
 * transfer.c (get and put), poll.c, and sftppath.c (confinement of paths to the
 * connection's root, pure functions). docs/sftp.md is the reference for users.
 */
#include "sftp_internal.h"

static const ferry_input list_inputs[] = {
    {"path", "string", 0, "\".\"",
     "the directory to list; relative to the connection's root, or absolute "
     "inside it"},
    {"recursive", "boolean", 0, "false",
     "list subdirectories too (up to 32 levels; symbolic links are not "
     "followed)"},
    {"glob", "string", 0, NULL,
     "only entries that match: a glob without '/' is matched against the "
     "name, one with '/' against the path relative to path (fnmatch)"},
    {"type", "string", 0, "\"any\"",
     "only entries of this type: \"any\", \"file\", \"dir\", \"link\" or "
     "\"other\""},
    {"include_hidden", "boolean", 0, "true",
     "false: skip names starting with '.', and do not enter such "
     "directories"},
    {"limit", "integer", 0, "100000",
     "the most entries returned; \"truncated\" says when there were more"},
    {0}};

static const ferry_input stat_inputs[] = {
    {"path", "string", 1, NULL, "the file or directory"},
    {"follow_links", "boolean", 0, "true",
     "false: describe a symbolic link itself, not what it points to"},
    {"missing_ok", "boolean", 0, "false",
     "true: a missing path gives {\"exists\": false} instead of an error"},
    {0}};

static const ferry_input get_inputs[] = {
    {"path", "string", 1, NULL, "the file to download"},
    {"as", "string", 0, "\"blob\"",
     "\"blob\": the content as a blob (any size, streamed); \"text\": as a "
     "string (UTF-8, up to max_text_bytes)"},
    {"max_text_bytes", "integer", 0, "1048576",
     "with as \"text\": a larger file fails the step"},
    {"content_type", "string", 0, "\"application/octet-stream\"",
     "the blob's content type"},
    {0}};

static const ferry_input put_inputs[] = {
    {"path", "string", 1, NULL, "the file to write"},
    {"blob", "blob", 0, NULL, "the content, from a blob (streamed)"},
    {"text", "string", 0, NULL, "the content, from a string (UTF-8)"},
    {"overwrite", "boolean", 0, "false",
     "replace an existing file (atomically); false fails the step when the "
     "file exists"},
    {"parents", "boolean", 0, "false", "create missing parent directories"},
    {"permissions", "string", 0, "\"0644\"", "the new file's mode, in octal"},
    {0}};

static const ferry_input move_inputs[] = {
    {"from", "string", 1, NULL, "the file or directory to move"},
    {"to", "string", 1, NULL, "its new path"},
    {"overwrite", "boolean", 0, "false",
     "replace an existing file at to (atomically); false fails the step "
     "when it exists"},
    {"parents", "boolean", 0, "false",
     "create missing parent directories of to"},
    {0}};

static const ferry_input delete_inputs[] = {
    {"path", "string", 1, NULL, "the file or directory to delete"},
    {"recursive", "boolean", 0, "false",
     "delete a directory with everything in it (symbolic links are deleted, "
     "not followed)"},
    {"missing_ok", "boolean", 0, "false",
     "true: a missing path is not an error"},
    {0}};

static const ferry_input mkdir_inputs[] = {
    {"path", "string", 1, NULL, "the directory to create"},
    {"parents", "boolean", 0, "true", "create missing parent directories too"},
    {"exist_ok", "boolean", 0, "true",
     "false: fail when the directory exists already"},
    {"permissions", "string", 0, "\"0755\"",
     "the mode of the directories created, in octal"},
    {0}};

static const ferry_input new_files_inputs[] = {
    {"path", "string", 1, NULL,
     "the directory to watch, inside the connection's root"},
    {"recursive", "boolean", 0, "false",
     "watch subdirectories too (names starting with '.' are never entered)"},
    {0}};

static const ferry_action actions[] = {
    {.id = "sftp.list",
     .label = "List a directory",
     .description = "Lists a directory, optionally recursively and filtered "
                    "by a glob or a type.",
     .inputs = list_inputs,
     .output = "{\"path\", \"count\", \"truncated\", \"entries\": [{\"path\", "
               "\"relative\", \"name\", \"type\", \"size\", \"mtime\", "
               "\"permissions\"}]}",
     .run = sftp_action_list,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "sftp.stat",
     .label = "Describe a file",
     .description = "Gives a file's or directory's type, size, modification "
                    "time and permissions.",
     .inputs = stat_inputs,
     .output = "{\"path\", \"name\", \"type\", \"size\", \"mtime\", "
               "\"permissions\", \"exists\"}",
     .run = sftp_action_stat,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "sftp.get",
     .label = "Download a file",
     .description = "Downloads a file into a blob, streamed in chunks, or as "
                    "text for a small file.",
     .inputs = get_inputs,
     .output = "{\"path\", \"name\", \"size\", \"mtime\", \"blob\" | "
               "\"text\"}",
     .run = sftp_action_get,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {.id = "sftp.put",
     .label = "Upload a file",
     .description = "Uploads a blob or a string to a temporary name in the "
                    "target's directory, then renames it into place, so "
                    "readers never see half a file.",
     .inputs = put_inputs,
     .output = "{\"path\", \"name\", \"size\"}",
     .run = sftp_action_put},
    {.id = "sftp.move",
     .label = "Move or rename",
     .description = "Renames a file or directory on the server.",
     .inputs = move_inputs,
     .output = "{\"from\", \"to\"}",
     .run = sftp_action_move},
    {.id = "sftp.delete",
     .label = "Delete",
     .description = "Deletes a file, or a directory (with its content when "
                    "recursive).",
     .inputs = delete_inputs,
     .output = "{\"path\", \"deleted\", \"count\"}",
     .run = sftp_action_delete},
    {.id = "sftp.mkdir",
     .label = "Create a directory",
     .description = "Creates a directory, with its parents by default.",
     .inputs = mkdir_inputs,
     .output = "{\"path\", \"created\"}",
     .run = sftp_action_mkdir,
     .flags = FERRY_ACTION_IDEMPOTENT},
    {0}};

static const ferry_trigger triggers[] = {
    {.id = "sftp.new_files",
     .label = "New files",
     .description = "Finds the regular files in a directory (recursively if "
                    "asked), skipping names that start with '.'. The host "
                    "applies the file options (include, exclude, min_age, "
                    "read_lock, max_per_poll, sort_by, move_to, "
                    "move_failed_to, delete, keep) and hands back the "
                    "disposals for the poll to carry out.",
     .inputs = new_files_inputs,
     .poll = sftp_poll_new_files,
     .flags = FERRY_TRIGGER_FILES},
    {0}};

static const ferry_input server_fields[] = {
    {"host", "string", 1, NULL, "the server's host name or address"},
    {"port", "integer", 0, "22", "the SSH port"},
    {"username", "string", 1, NULL, "the user to log in as"},
    {"password", "string", 0, NULL, "the password (secret)"},
    {"private_key", "string", 0, NULL,
     "a private key as text, PEM or OpenSSH format: ed25519 or ecdsa (rsa "
     "needs rsa-sha2, which libssh2 has from 1.11) (secret)"},
    {"passphrase", "string", 0, NULL,
     "the passphrase of an encrypted private key (secret)"},
    {"host_key_sha256", "string", 0, NULL,
     "the server's host key fingerprint as ssh-keygen -lf prints it "
     "(SHA256:...); required unless insecure_skip_host_key_check"},
    {"insecure_skip_host_key_check", "boolean", 0, "false",
     "connect without checking the host key (tests only)"},
    {"root", "string", 0, NULL,
     "the directory every path is confined to (absolute, or relative to the "
     "login directory); default the login directory"},
    {"timeout", "any", 0, "\"30s\"",
     "how long connecting, and any one network wait, may take: a duration "
     "(\"30s\", \"2m\") or milliseconds"},
    {0}};

static const ferry_connection_type connections[] = {
    {.id = "sftp.server",
     .label = "SFTP server",
     .description = "An SSH server with the SFTP subsystem, its host key "
                    "pinned; a password or a private key.",
     .auth = "custom",
     .fields = server_fields},
    {0}};

static const ferry_component desc = {
    FERRY_COMPONENT_HEADER,
    .flags = FERRY_COMPONENT_NO_HTTP, /* never calls api->http_request */
    .name = "sftp",
    .version = "1.0.0",
    .description = "Files on SFTP servers: list, get, put, move, delete, "
                   "mkdir, and a poll trigger for new files.",
    .actions = actions,
    .triggers = triggers,
    .connections = connections,
};

FERRY_EXPORT const ferry_component *
ferry_component_entry(const ferry_api *host) {
    sftp_api = host;
    return &desc;
}
