#!/usr/bin/env node
// The `memoflow` command. Kept as plain JS outside dist so npm can link it before the first build.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
