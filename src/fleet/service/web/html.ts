import { h } from 'preact';
import htm from 'htm';

/** Preact through tagged templates (htm): components without a JSX compile step, plain TypeScript. */
export const html = htm.bind(h);
