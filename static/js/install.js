// The install page: tell Bitrix24 the installation is complete.
import { withBX24 } from './bx24.js';

const status = document.getElementById('install-status');
const started = withBX24((bx) => {
  bx.installFinish();
});
if (!started && status) {
  status.textContent = status.dataset.outside;
}
