/**
 * Shared libraries opened through the koffi FFI: the first of several names
 * that loads (a Debian soname, the plain name, a macOS name), or an error
 * that names each try and what to install.
 */
export type Koffi = typeof import('koffi');
export type NativeLibrary = ReturnType<Koffi['load']>;

export async function loadKoffi(): Promise<Koffi> {
  return (await import('koffi')).default as unknown as Koffi;
}

export function loadNativeLibrary(koffi: Koffi, names: string[], what: string, installHint: string): NativeLibrary {
  const errors: string[] = [];
  for (const name of names) {
    try {
      return koffi.load(name);
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`${what} not found (${errors.join('; ')}). Install it: ${installHint}`);
}
