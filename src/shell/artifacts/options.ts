/** What ensureArtifact() (ensure.ts) is asked, and what it answers; shared by the store and the installer. */
export interface EnsureArtifactOptions {
  /** Glow's state directory (NodePaths.stateDir, /var/lib/glow). */
  stateDir: string;
  /** glow.yaml `artifacts`: an http(s) URL base or a directory. */
  source: string;
  /** The config repository, against which a relative directory `source` is resolved. */
  repoDir?: string;
  image: string;
  version: string;
  /** `sha256:<64 hex>`: the tarball must have this digest. */
  digest?: string;
  /**
   * The app's `command` (its program relative to the artifact's root): when given, a tarball that holds its build
   * directory instead of its content (`web-1.0.0/bin/web` for `bin/web`) is refused with GLOW_E_ARTIFACT_LAYOUT.
   */
  command?: readonly string[] | undefined;
  signal?: AbortSignal;
  /** Bound on the download (connection, headers and body); default 10 minutes. */
  timeoutMs?: number;
}

export interface EnsureArtifactResult {
  /** The unpacked artifact: artifactDir() of src/base/paths.ts. */
  dir: string;
  /** True if this call (or the fetch it shared) downloaded or copied it; false if it was already there. */
  fetched: boolean;
}

