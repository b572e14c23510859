"use strict";
// Loads the native binding, and says plainly why when it cannot: a platform
// with no POSIX shared memory or no build of ours names the platform and
// the supported list; a supported platform whose binary package is missing
// names the package to install. A bare "Cannot find native binding" stack
// helps nobody.
Object.defineProperty(exports, "__esModule", { value: true });
exports.native = void 0;
const errors_1 = require("./errors");
// The supported targets are the ones package.json builds (napi.targets).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { name: packageName, napi } = require('../package.json');
/** napi-rs's name for a Rust target triple: 'x86_64-unknown-linux-gnu' -> 'linux-x64-gnu'. */
function platformKey(triple) {
    const [arch, vendor, os, abi] = triple.split('-');
    const cpu = arch === 'x86_64' ? 'x64' : arch === 'aarch64' ? 'arm64' : arch;
    if (vendor === 'apple')
        return `darwin-${cpu}`;
    if (abi === undefined)
        return `${os}-${cpu}`;
    return `${os}-${cpu}-${abi}`;
}
const SUPPORTED = napi.targets.map(platformKey);
function isMusl() {
    const report = process.report?.getReport();
    return report?.header?.glibcVersionRuntime === undefined;
}
function runningKey() {
    const base = `${process.platform}-${process.arch}`;
    return process.platform === 'linux' ? `${base}-${isMusl() ? 'musl' : 'gnu'}` : base;
}
function loadError(message, code, cause) {
    const error = new Error(message, cause === undefined ? undefined : { cause });
    Object.defineProperty(error, 'code', { value: code, enumerable: true });
    return error;
}
function loadBinding() {
    // On Linux both C libraries are built for each supported CPU, so the
    // (slow to detect) libc matters only for naming the package below.
    const base = `${process.platform}-${process.arch}`;
    if (!SUPPORTED.some((key) => key === base || key.startsWith(`${base}-`))) {
        const here = process.platform === 'linux' ? runningKey() : base;
        const why = process.platform === 'win32' ? ' (Windows has no POSIX shared memory)' : '';
        throw loadError(`${packageName} has no build for ${here}${why}; it supports ${SUPPORTED.join(', ')}`, 'ERR_SHM_UNSUPPORTED_PLATFORM');
    }
    try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        return require('../native/binding.js');
    }
    catch (cause) {
        const here = runningKey();
        const binaryPackage = `${packageName}-${here}`;
        throw loadError(`${packageName} could not load its native binary for ${here}. It comes in the package ${binaryPackage}, ` +
            `which npm installs as an optional dependency; it is missing when installing with --omit=optional or ` +
            `--no-optional, or from a lockfile made on another platform (an npm bug). Install it with ` +
            `\`npm install ${binaryPackage}\`, or build from source with \`npm run build\` in a clone.`, 'ERR_SHM_BINDING_MISSING', cause);
    }
}
exports.native = loadBinding();
// Every error the binding throws is made by these, in this environment
// (each worker loads the binding again, and registers again).
exports.native.setErrorFactories(errors_1.systemError, errors_1.stateError);
//# sourceMappingURL=native.js.map