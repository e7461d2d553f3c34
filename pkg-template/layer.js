// The thin hand-written layer over the generated bindings: the error class
// (so `instanceof OncelyError` works before the WebAssembly is loaded) and
// loading the WebAssembly on first use, so there is no init call to make.
import init, { Oncely as Client, setErrorClass } from './oncely.js';

/** Every oncely failure: `code` is "conflict", "rejected", "gave_up", "expired", "storage" or "invalid". */
export class OncelyError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'OncelyError';
    this.code = code;
  }
}

/** The `Oncely` entry point, with the WebAssembly located by `locate`. */
export function entry(locate) {
  let ready;
  return {
    async open(options) {
      ready ??= Promise.resolve(locate())
        .then((module_or_path) => init({ module_or_path }))
        .then(() => setErrorClass(OncelyError));
      try {
        await ready;
      } catch (cause) {
        ready = undefined;
        const error = new OncelyError(`oncely could not load its WebAssembly: ${cause?.message ?? cause}`, 'storage');
        error.cause = cause;
        throw error;
      }
      return Client.open(options);
    },
  };
}
