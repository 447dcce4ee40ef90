import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Where berth's default seccomp profile comes from. It is podman's profile, from the Debian package
 * golang-github-containers-common, in the system location when the host has the package. A Raspberry Pi
 * OS card made by `berth flash` does not, so the agent bundle carries a copy (src/flash/bundle.ts copies
 * the build host's file, with the package's copyright notice beside it). This module holds the two places
 * and the one lookup; the engine (through SeccompProfiles) and `berth doctor` both ask it.
 */

/** podman's profile as the distribution installs it. */
export const DEFAULT_SECCOMP_PROFILE = '/usr/share/containers/seccomp.json';
export const SECCOMP_PACKAGE = 'golang-github-containers-common';

/**
 * The agent bundle's copy, `<package root>/share/containers/seccomp.json`: `../../` from src/runtime/,
 * dist/runtime/ and dist/bundle/ alike (as MONITOR_BIN), so this module must stay two levels deep.
 */
export const BUNDLED_SECCOMP_PROFILE = fileURLToPath(new URL('../../share/containers/seccomp.json', import.meta.url));

/** Where the bundle keeps the profile, relative to its root (what bundle.ts writes). */
export const BUNDLED_SECCOMP_RELATIVE = 'share/containers/seccomp.json';

/**
 * In order of preference: the system's (the distribution keeps it current with the kernel), then the
 * bundle's copy (frozen when the bundle was built).
 */
export const DEFAULT_SECCOMP_CANDIDATES: readonly string[] = [DEFAULT_SECCOMP_PROFILE, BUNDLED_SECCOMP_PROFILE];

/** The first of `candidates` that exists, or undefined when none does. */
export function findDefaultSeccompProfile(candidates: readonly string[] = DEFAULT_SECCOMP_CANDIDATES): string | undefined {
  return candidates.find((c) => fs.existsSync(c));
}

/** How `berth doctor` and error messages name where a profile came from. */
export function describeSeccompSource(profile: string): string {
  return profile === BUNDLED_SECCOMP_PROFILE ? "berth's bundled copy" : profile === DEFAULT_SECCOMP_PROFILE ? `the system's (${SECCOMP_PACKAGE})` : 'given';
}
