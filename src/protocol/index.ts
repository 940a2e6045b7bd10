export * from './frames.js';
export * from './ogg.js';
export * from './ogg-crc.js';
export * from './opus-packet.js';
export * from './sampling.js';
export * from './close-codes.js';
export * from './events.js';
export * from './server-info.js';
