export function newestMtime(path: string): number;
