// The sign-in page: exchanges a name and passphrase for a session cookie, then returns to the
// page that sent the browser here (only a page of this server, never another site).
const form = document.getElementById('signin');
const error = document.getElementById('signin-error');
const submit = document.getElementById('signin-submit');

/** Where to go once signed in: `?next=` when it names a page of this origin, else the search page. */
function next() {
  const target = new URLSearchParams(location.search).get('next') || '/';
  const url = new URL(target, location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : '/';
}

/** Shows why the sign-in failed, and clears the passphrase for the next try. */
function fail(message) {
  error.textContent = message;
  error.hidden = false;
  form.passphrase.value = '';
  form.passphrase.focus();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  error.hidden = true;
  submit.disabled = true;
  const body = JSON.stringify({ user: form.user.value, passphrase: form.passphrase.value });
  try {
    const res = await fetch('/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    if (res.ok) {
      location.replace(next());
      return;
    }
    const answer = await res.json().catch(() => ({}));
    fail(answer.error ? answer.error.message : `Sign-in failed (${res.status})`);
  } catch {
    fail('Cannot reach the clipsight server — is it running?');
  } finally {
    submit.disabled = false;
  }
});
