import { isAbsolute, relative, sep } from "node:path";

/**
 * How a file is named in messages: relative to the directory the user ran the tool in when the file
 * is inside it (`desired/apps.yaml:12:5`, clickable in terminals and editors), absolute otherwise.
 */
export function displayPath(root: string, absolute: string): string {
  const rel = relative(root, absolute);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) return absolute;
  return sep === "/" ? rel : rel.split(sep).join("/");
}
