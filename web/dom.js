// The two DOM lookups every module of the page uses.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** The value of the checked radio button of a group. */
export const radio = (name) => document.querySelector(`input[name="${name}"]:checked`).value;
