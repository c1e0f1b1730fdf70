#!/usr/bin/env node
// The `loom` executable: runs the compiled CLI (npm install builds dist/ through the prepare script).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
