#!/usr/bin/env node
// The `memoflow` command. Kept as plain JS outside dist so npm can link it before the first build.
import { main } from '../dist/cli/main.js';

// `memoflow runs ls | head` closes the pipe early: that is not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv);
