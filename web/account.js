// The signed-in user's name and the sign-out button in the header (shown only for a sign-in
// session: on an open loopback server or with --public there is nobody to sign out).

import { ui } from './dom.js';
import { fetchSession, signOut } from './api.js';

/** Shows who is signed in, if anyone. */
export async function initAccount() {
  ui.signOut.addEventListener('click', onSignOut);
  const session = await fetchSession().catch(() => null);
  if (session?.via !== 'session') return;
  ui.accountName.textContent = session.user;
  ui.account.hidden = false;
}

/** Signs out and goes to the sign-in page (which comes back here after the next sign-in). */
async function onSignOut() {
  ui.signOut.disabled = true;
  await signOut().catch(() => {});
  location.assign('/signin');
}
