/**
 * qwenvl: run the Qwen vision-language model family locally from Node.js.
 * @module
 */
export { QwenVLError, type ErrorCode } from './errors.js';
export { info, setThreads, type Info, type OpFamilyInfo, type CudaInfo } from './info.js';
