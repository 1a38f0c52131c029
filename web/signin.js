// The sign-in page: exchanges a name and passphrase for a session cookie, then returns to the
// page that sent the browser here (only a path on this server).
const form = document.getElementById('signin');
const error = document.getElementById('signin-error');

function next() {
  const target = new URLSearchParams(location.search).get('next') || '/';
  return target.startsWith('/') && !target.startsWith('//') ? target : '/';
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  error.hidden = true;
  const body = JSON.stringify({ user: form.user.value, passphrase: form.passphrase.value });
  const res = await fetch('/api/session', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
  if (res.ok) {
    location.replace(next());
    return;
  }
  const answer = await res.json().catch(() => ({}));
  error.textContent = answer.error ? answer.error.message : `sign-in failed (${res.status})`;
  error.hidden = false;
  form.passphrase.value = '';
});
