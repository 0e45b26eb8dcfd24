/**
 * Where a configured model lives. A model setting is an absolute folder, or a folder name (or, with remote
 * models allowed, a Hub id) under MODELS_DIR. Transformers.js looks a model up as `<root><id>`, so engines that
 * load through it need the two parts; engines that read files themselves need the folder.
 */

export interface ModelLocation {
  /** Folder holding the model folder, ending in "/". */
  root: string;
  /** Model folder name (or Hub id) under `root`. */
  id: string;
}

/** A model folder path split into its parent and its name. */
export function splitModelFolder(dir: string): ModelLocation {
  const d = dir.replace(/\/+$/, "");
  const i = d.lastIndexOf("/");
  return i < 0 ? { root: "./", id: d } : { root: d.slice(0, i + 1), id: d.slice(i + 1) };
}

/** A model setting as Transformers.js looks it up. */
export function locateModel(model: string, modelsDir: string): ModelLocation {
  if (model.startsWith("/")) return splitModelFolder(model);
  return { root: modelsDir.endsWith("/") ? modelsDir : `${modelsDir}/`, id: model.replace(/\/+$/, "") };
}

/** A model setting as a folder path. */
export function modelFolder(model: string, modelsDir: string): string {
  const { root, id } = locateModel(model, modelsDir);
  return root + id;
}
