#!/usr/bin/env node
// The `memoflow` command. Kept as plain JS outside dist so npm can link it before the first build.
import { main } from '../dist/cli/main.js';

// `memoflow runs ls | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const code = await main(process.argv);
process.exitCode = code;
// After a user error (exit 2) nothing is left worth waiting for: a half-open connection to a
// server that never answered must not keep the process alive. A clean exit (0 or 1) still waits
// for everything to close by itself, which proves nothing leaked.
if (code === 2) setTimeout(() => process.exit(code), 500).unref();
