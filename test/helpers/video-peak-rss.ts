/**
 * Child-process probe for the flat-memory test (test/processor/video-long.test.ts): processes
 * one video file with the options given as JSON and prints the frame count and this process's
 * peak resident set size. Run as `tsx test/helpers/video-peak-rss.ts FILE OPTIONS_JSON`.
 */
import { processVideo } from '../../lib/processor/video.js';
import { parseVideoProcessorConfig } from '../../lib/processor/video-config.js';

const [file, optionsJson] = process.argv.slice(2);
const config = parseVideoProcessorConfig({ video_processor_type: 'Qwen3VLVideoProcessor', size: { shortest_edge: 4096, longest_edge: 25165824 } });
const video = await processVideo(file, config, JSON.parse(optionsJson ?? '{}'));
process.stdout.write(JSON.stringify({ frames: video.frameIndices.length, maxRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
