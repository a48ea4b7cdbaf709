#!/usr/bin/env node
import '../dist/cli/slirp4netns-main.js';
