"use strict";
// The errors the API throws: Node-style argument errors, and ShmError for
// failed system calls (shaped like the errors of Node's `fs`) and for
// states that refuse a call. `systemError` and `stateError` are the two
// factories of ShmError.
Object.defineProperty(exports, "__esModule", { value: true });
exports.ShmError = void 0;
exports.withCode = withCode;
exports.describe = describe;
exports.invalidType = invalidType;
exports.invalidValue = invalidValue;
exports.outOfRange = outOfRange;
exports.stateError = stateError;
exports.systemError = systemError;
const node_util_1 = require("node:util");
function withCode(error, code) {
    Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true });
    return error;
}
function describe(value) {
    if (value === null || value === undefined)
        return String(value);
    if (typeof value === 'function')
        return `function ${value.name || '<anonymous>'}`;
    if (typeof value === 'object')
        return `an instance of ${value.constructor?.name ?? 'Object'}`;
    const shown = (0, node_util_1.inspect)(value, { maxStringLength: 40 });
    return `type ${typeof value} (${shown})`;
}
function invalidType(argument, expected, received) {
    return withCode(new TypeError(`The "${argument}" argument must be ${expected}. Received ${describe(received)}`), 'ERR_INVALID_ARG_TYPE');
}
function invalidValue(argument, reason, received) {
    return withCode(new TypeError(`The argument '${argument}' ${reason}. Received ${(0, node_util_1.inspect)(received, { maxStringLength: 40 })}`), 'ERR_INVALID_ARG_VALUE');
}
function outOfRange(argument, range, received) {
    return withCode(new RangeError(`The value of "${argument}" is out of range. It must be ${range}. Received ${String(received)}`), 'ERR_OUT_OF_RANGE');
}
/**
 * What the API throws when a system call fails, or when an object is in a
 * state that refuses the call. A failed system call is shaped like the
 * errors of Node's `fs`: `code` is the errno name ('EEXIST'), `errno` its
 * negative number, `syscall` the call that failed, `path` the object's name
 * when there is one (see `systemError`). A state error (`stateError`) has a
 * code of posix-shm's own ('ERR_SHM_CLOSED') and no `errno` or `syscall`:
 * no system call failed.
 */
class ShmError extends Error {
    constructor(message, details) {
        super(message);
        this.code = details.code;
        if (details.errno !== undefined)
            this.errno = details.errno;
        if (details.syscall !== undefined)
            this.syscall = details.syscall;
        if (details.path !== undefined)
            this.path = details.path;
    }
    /**
     * True for a ShmError made by any loaded copy of this module. The binding
     * builds its errors with the factories the most recent load registered
     * (a module cache cleared, a test runner's reload), so an error thrown
     * through an earlier copy still passes that copy's `instanceof ShmError`.
     */
    static [Symbol.hasInstance](value) {
        // A subclass asks as usual: by its prototype chain.
        if (this !== ShmError)
            return Function.prototype[Symbol.hasInstance].call(this, value);
        return typeof value === 'object' && value !== null && value[SHM_ERROR] === true;
    }
}
exports.ShmError = ShmError;
/** The brand every copy of ShmError puts on its prototype. */
const SHM_ERROR = Symbol.for('posix-shm.ShmError');
Object.defineProperty(ShmError.prototype, SHM_ERROR, { value: true });
// On the prototype, not the instance: like fs errors, no own `name` property.
Object.defineProperty(ShmError.prototype, 'name', { value: 'ShmError', writable: true, configurable: true });
/**
 * The ShmError of a state that refuses the call (closed, read-only, ...),
 * coded `code`: no system call failed, so it has no `errno` or `syscall`.
 */
function stateError(code, message, path) {
    return new ShmError(message, { code, path });
}
/** The ShmError for `errno` (negative, as Node numbers them) from `syscall`. */
function systemError(errno, syscall, path, fallbackMessage, detail) {
    const known = (0, node_util_1.getSystemErrorMap)().get(errno);
    const code = known ? known[0] : (0, node_util_1.getSystemErrorName)(errno);
    const description = known ? known[1] : (fallbackMessage ?? 'unknown error');
    const where = path === undefined ? syscall : `${syscall} '${path}'`;
    const why = detail === undefined ? '' : ` (${detail})`;
    return new ShmError(`${code}: ${description}, ${where}${why}`, { code, errno, syscall, path });
}
//# sourceMappingURL=errors.js.map