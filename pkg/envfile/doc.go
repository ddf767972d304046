// Package envfile reads environment files: the KEY=VALUE syntax of
// systemd's EnvironmentFile= and docker's --env-file, as operators already
// write them.
//
// # Syntax
//
//   - One assignment per line: KEY=VALUE. Whitespace around the key and
//     around an unquoted value is dropped; the value may contain '='.
//   - A line whose first non-blank character is '#' or ';' is a comment; a
//     blank line is nothing. A '#' after a value is part of the value.
//   - An optional "export " before the key is ignored, so a file that a
//     shell sources also reads here.
//   - 'single quotes' keep everything literally, newlines included.
//   - "double quotes" keep everything but a backslash before one of
//     " \ ` $ (which stands for that character) and a backslash before a
//     newline (which joins the lines); any other backslash is kept, as
//     systemd does ("\n" stays a backslash and an n).
//   - Outside quotes a backslash takes the next character literally, and a
//     backslash at the end of a line joins the next one.
//   - Quoted and unquoted parts next to each other join: A="x"'y'z is xyz.
//   - Keys match ^[A-Za-z_][A-Za-z0-9_]*$. A later assignment of a key
//     replaces an earlier one.
//
// Unlike systemd, which skips what it cannot read, a line that is not an
// assignment, a bad key, an unterminated quote or a NUL byte is an error:
// a typo in an env file is found when it is deployed, not when the service
// misbehaves.
//
// # Secrets
//
// Env files hold secrets. An [*Error] names the file and the line, never
// a key or a value, nor any text of the file.
package envfile
